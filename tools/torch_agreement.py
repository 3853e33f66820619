"""What the torch cross-checks compare once both sides ran: convcalc's backward pass
(`convcalc.compute.gradients.Backward`) against torch's output and autograd, as one
line naming what disagrees. Shared by check_gradients_against_torch.py (2-D) and
check_ranks_against_torch.py (every rank), which convert torch's tensors first."""

from __future__ import annotations

from typing import Any

import numpy as np


def disagreement(
    ours: Any, output: np.ndarray, grad_input: np.ndarray, params: list[dict[str, Any]]
) -> str | None:
    """None when ``ours`` equals torch's ``output``, ``grad_input`` and, layer by layer,
    the gradients of ``params`` (each ``{"k": [kernel tensors], "b": bias tensor or
    None}``) to 1e-9; else what differs."""
    problems = [] if np.allclose(output, ours.output, atol=1e-9) else ["forward output"]
    if not np.allclose(grad_input, ours.grad_input, atol=1e-9):
        problems.append("grad_input")
    for position, (mine, theirs) in enumerate(zip(ours.layers, params, strict=True), start=1):
        if mine is None:
            continue
        for f, (gk, k) in enumerate(zip(mine.kernels, theirs["k"], strict=True)):
            if not np.allclose(gk, k.grad.numpy(), atol=1e-9):
                problems.append(f"layer {position} grad_kernel[{f}]")
        if theirs["b"] is not None and not np.allclose(mine.bias, theirs["b"].grad.numpy()):
            problems.append(f"layer {position} grad_bias")
    return ", ".join(problems) or None
