"""Check the activations apply runs beyond `activate` (GELU, SiLU, Hardswish, Hardsigmoid,
Identity: `convcalc.compute.pointwise.SMOOTH`) against PyTorch's values and autograd.

Run in a venv with torch (not a dependency):
    PYTHONPATH=. python tools/check_activations_against_torch.py
Prints the largest difference of value and slope for each over -6..6 and at the kinks.
"""

from __future__ import annotations

import numpy as np
import torch

from convcalc.compute.pointwise import SMOOTH

FUNCTIONS = {
    "gelu": torch.nn.functional.gelu,
    "silu": torch.nn.functional.silu,
    "hardswish": torch.nn.functional.hardswish,
    "hsigmoid": torch.nn.functional.hardsigmoid,
    "identity": lambda t: t,
}


def main() -> None:
    kinks = torch.tensor([-3.0, 3.0], dtype=torch.float64)
    x = torch.cat([torch.linspace(-6, 6, 241, dtype=torch.float64), kinks])
    for name, function in FUNCTIONS.items():
        leaf = x.clone().requires_grad_(True)
        y = function(leaf)
        y.sum().backward()
        assert leaf.grad is not None
        value = np.abs(SMOOTH[name].value(x.numpy()) - y.detach().numpy()).max()
        slope = np.abs(SMOOTH[name].slope(x.numpy()) - leaf.grad.numpy()).max()
        print(f"{name:10s} value {value:.1e}  slope {slope:.1e}")


if __name__ == "__main__":
    main()
