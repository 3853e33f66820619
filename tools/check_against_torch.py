# ruff: noqa: B023  (each lambda is called within its own loop iteration)
"""Sweep small layer geometries and compare convcalc's sizes with PyTorch's.

Not run by CI (PyTorch is not a dependency): `pip install torch` then
`python tools/check_against_torch.py`. Prints the mismatches and a count.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from convcalc.calc.geometry import conv_axis, pool_axis, transposed_axis
from convcalc.errors import ConvcalcError


def torch_size(fn) -> int | None:
    try:
        return int(fn().shape[-1])
    except RuntimeError:
        return None


def ours(fn) -> int | None:
    try:
        return fn().size
    except ConvcalcError:
        return None


def main() -> None:
    checked = mismatches = 0
    grid = itertools.product(range(1, 13), range(1, 6), range(1, 5), range(0, 4), range(1, 4))
    for n, k, s, p, d in grid:
        x = torch.zeros(1, 1, n)
        w = torch.zeros(1, 1, k)
        cases = {
            "conv": (
                lambda: F.conv1d(x, w, stride=s, padding=p, dilation=d),
                lambda: conv_axis(n, k, stride=s, padding=p, dilation=d),
            ),
            "maxpool": (
                lambda: F.max_pool1d(x, k, s, p, d),
                lambda: pool_axis(n, k, stride=s, padding=p, dilation=d),
            ),
            "maxpool ceil": (
                lambda: F.max_pool1d(x, k, s, p, d, ceil_mode=True),
                lambda: pool_axis(n, k, stride=s, padding=p, dilation=d, ceil=True),
            ),
            "avgpool ceil": (
                lambda: F.avg_pool1d(x, k, s, p, ceil_mode=True),
                lambda: pool_axis(n, k, stride=s, padding=p, ceil=True),
            ),
        }
        for op in range(max(s, d) + 1):
            cases[f"transposed op={op}"] = (
                lambda op=op: F.conv_transpose1d(
                    x, w, stride=s, padding=p, output_padding=op, dilation=d
                ),
                lambda op=op: transposed_axis(
                    n, k, stride=s, padding=p, dilation=d, output_padding=op
                ),
            )
        for name, (theirs_fn, ours_fn) in cases.items():
            if name == "avgpool ceil" and d > 1:
                continue
            theirs, mine = torch_size(theirs_fn), ours(ours_fn)
            if theirs == 0:
                theirs = None  # torch returns an empty tensor where convcalc refuses
            checked += 1
            if theirs != mine:
                mismatches += 1
                print(f"{name}: n={n} k={k} s={s} p={p} d={d}: torch {theirs}, convcalc {mine}")
    print(f"{checked} cases, {mismatches} mismatches")


if __name__ == "__main__":
    main()
