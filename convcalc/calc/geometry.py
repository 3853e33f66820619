"""Output sizes of convolution, pooling and transposed convolution along one axis.

Every function here works on one spatial axis; a layer applies them per axis,
and every parameter may differ between axes. Sizes follow the frameworks:

* convolution (PyTorch, TensorFlow explicit padding, Caffe):
  ``out = floor((n + p_lo + p_hi - d(f-1) - 1)/s) + 1``
* pooling with PyTorch's ``ceil_mode``: rounds up, but a window may not start
  inside the bottom/right padding; Caffe's pooling always rounds up that way.
* TensorFlow SAME: ``out = ceil(n/s)``, total padding
  ``max((out-1)s + d(f-1) + 1 - n, 0)``, the odd one on the bottom/right.
* VALID: no padding, ``out = ceil((n - d(f-1))/s)``; FULL: ``p = d(f-1)`` per side.
* transposed: ``out = (n-1)s - 2p + d(f-1) + output_padding + 1``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from convcalc.calc.choices import Convention, PadRule, Rounding
from convcalc.errors import ConvcalcError

Padding = int | tuple[int, int] | PadRule
"""Padding of one axis: the same count on both sides, (before, after), or a rule."""


class Axis(NamedTuple):
    """One spatial axis of a layer, computed: input n, kernel f, output size.

    ``pad_lo``/``pad_hi`` are the padding before/after; ``exact`` says whether the
    windows tile the padded input with nothing left over; ``uncovered`` counts the
    input rows/columns after the last window that no window reaches.
    """

    n: int
    kernel: int
    stride: int
    dilation: int
    pad_lo: int
    pad_hi: int
    size: int
    exact: bool
    uncovered: int
    rounding: Rounding
    formula: str
    notes: tuple[str, ...] = ()

    @property
    def span(self) -> int:
        """The dilated kernel's extent, d(f-1)+1."""
        return effective_kernel(self.kernel, self.dilation)


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """The extent of a dilated kernel: d(f-1)+1."""
    return dilation * (kernel - 1) + 1


def conv_axis(
    n: int,
    kernel: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    convention: Convention = Convention.TORCH,
) -> Axis:
    """Output size of a convolution along one axis.

    Parameters
    ----------
    n, kernel, stride, dilation
        Input size, kernel size f, stride s and dilation d (all >= 1).
    padding
        Zero padding p per side, ``(before, after)``, or ``same``/``valid``/``full``.
    convention
        Whose rules are reported where frameworks differ.

    Returns
    -------
    Axis
        ``floor((n + 2p - d(f-1) - 1)/s) + 1`` with the formula filled in.

    Examples
    --------
    >>> conv_axis(7, 3, stride=2).size
    3
    >>> conv_axis(28, 3, stride=2, padding=PadRule.SAME).pad_hi
    1
    """
    _check_positive(n=n, kernel=kernel, stride=stride, dilation=dilation)
    if padding == PadRule.SAME:
        return _same_axis(n, kernel, stride, dilation, convention, pooling=False)
    lo, hi = _explicit_padding(padding, kernel, dilation)
    return _window_axis(n, kernel, stride, dilation, lo, hi, ceil=False)


def pool_axis(
    n: int,
    kernel: int,
    *,
    stride: int | None = None,
    padding: Padding = 0,
    dilation: int = 1,
    ceil: bool = False,
    convention: Convention = Convention.TORCH,
) -> Axis:
    """Output size of a pooling window along one axis (stride defaults to the kernel).

    Rounds down, or with ``ceil`` up as PyTorch's ``ceil_mode`` does: the last
    window may run past the padded input but may not start inside the
    bottom/right padding (n=5, f=2, s=3, p=1 gives 2, not 3). Caffe's pooling
    always rounds that way. Padding may be at most half the kernel (PyTorch,
    TensorFlow) or less than the kernel (Caffe).

    Examples
    --------
    >>> pool_axis(5, 2, stride=3, padding=1, ceil=True).size
    2
    >>> pool_axis(28, 2, padding=PadRule.SAME).size
    14
    """
    stride = kernel if stride is None else stride
    _check_positive(n=n, kernel=kernel, stride=stride, dilation=dilation)
    if padding == PadRule.SAME:
        return _same_axis(n, kernel, stride, dilation, convention, pooling=True)
    lo, hi = _explicit_padding(padding, kernel, dilation)
    _check_pool_padding(kernel, max(lo, hi), convention)
    round_up = ceil or convention == Convention.CAFFE
    return _window_axis(n, kernel, stride, dilation, lo, hi, ceil=round_up)


def transposed_axis(
    n: int,
    kernel: int,
    *,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    output_padding: int = 0,
) -> Axis:
    """Output size of a transposed convolution along one axis.

    ``out = (n-1)s - 2p + d(f-1) + output_padding + 1`` (PyTorch). ``same`` gives
    ``n·s`` and ``valid`` gives ``n·s + max(d(f-1)+1 - s, 0)`` (TensorFlow).
    output_padding must be smaller than the stride or the dilation.

    Examples
    --------
    >>> transposed_axis(3, 3, stride=2).size
    7
    >>> transposed_axis(3, 3, stride=2, padding=1, output_padding=1).size
    6
    """
    _check_positive(n=n, kernel=kernel, stride=stride, dilation=dilation)
    if output_padding < 0 or output_padding >= max(stride, dilation):
        raise ConvcalcError(
            f"output_padding {output_padding} is not valid: it must be at least 0 and "
            f"smaller than the stride {stride} or the dilation {dilation}"
        )
    span = effective_kernel(kernel, dilation)
    if padding in (PadRule.SAME, PadRule.VALID):
        return _transposed_tf(n, kernel, stride, dilation, output_padding, PadRule(padding))
    lo, hi = _explicit_padding(padding, kernel, dilation)
    size = (n - 1) * stride - lo - hi + span - 1 + output_padding + 1
    if size < 1:
        raise ConvcalcError(
            f"padding {lo} is too large for this transposed convolution: the output would "
            f"have {size} rows; valid padding here is at most "
            f"{((n - 1) * stride + span + output_padding - 1) // 2}"
        )
    pad_term = f"2·{lo}" if lo == hi else f"{lo} − {hi}"
    formula = (
        (
            f"({n} − 1)·{stride} − {pad_term} + {_span_text(kernel, dilation)} "
            f"+ {output_padding} = {size}"
        )
        .replace("− 2·0 ", "")
        .replace("+ 0 = ", "= ")
    )
    return Axis(n, kernel, stride, dilation, lo, hi, size, True, 0, Rounding.TRANSPOSED, formula)


def same_padding(n: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after): the odd one goes after.

    Examples
    --------
    >>> same_padding(28, 3, 2)
    (0, 1)
    """
    out = -(-n // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - n, 0)
    return total // 2, total - total // 2


class Solution(NamedTuple):
    """One convolution (or transposed convolution) that maps n to the target size."""

    kernel: int
    stride: int
    padding: int | PadRule
    dilation: int
    exact: bool
    transposed: bool = False
    output_padding: int = 0


PADDINGS_SHOWN = 8
"""--target lists at most this many paddings (the smallest) per kernel, stride, dilation."""

SEARCH_MAX = 4096
"""--target searches strides and dilations up to this: beyond it answers are padding."""


def find_targets(
    n: int,
    target: int,
    *,
    kernels: Iterable[int] | None = None,
    strides: Iterable[int] | None = None,
    dilations: Iterable[int] = range(1, 4),
    transposed: bool | None = None,
) -> list[Solution]:
    """Every (kernel, stride, padding, dilation) in the given ranges taking n to target.

    By default kernels 1-11 and strides 1-4, further when the target is more than four
    times smaller or larger than the input (up to that scale, n/target or target/n),
    and each stride as its own kernel too (non-overlapping windows, as in a patch
    embedding).
    Padding ranges over 0 .. d(f-1) per side (beyond that a window would see only
    padding), the smallest `PADDINGS_SHOWN` that work, and ``same``. ``transposed``
    None searches convolutions, and transposed ones too when the target is larger than
    the input; True or False only that kind.
    Exact solutions come first, then the kind that suits the direction (transposed to
    grow), then paddings of at most half the window, then strides nearest the scale
    (n/target or target/n), then simpler ones (small dilation, output padding, stride,
    kernel, padding).
    """
    _check_positive(n=n, target=target)
    scale = round(max(n / target, target / n))
    dilations = list(dilations)
    _check_search("dilation", dilations)
    if strides is None:
        strides = _default_strides(scale)
    else:
        strides = list(strides)
        _check_search("stride", strides)
    pairs = [
        (k, s)
        for s in strides
        for k in (sorted({*range(1, 12), s}) if kernels is None else kernels)
    ]
    conv = transposed is not True
    deconv = transposed is True or (transposed is None and target > n)
    found = [
        sol
        for k, s in pairs
        for d in dilations
        if d == 1 or k > 1
        for sol in [
            *(_conv_solutions(n, target, k, s, d) if conv else []),
            *(_transposed_solutions(n, target, k, s, d) if deconv else []),
        ]
    ]
    return sorted(found, key=lambda sol: _solution_rank(sol, grows=target > n, scale=scale))


# -- helpers ---------------------------------------------------------------


def _window_axis(
    n: int, kernel: int, stride: int, dilation: int, lo: int, hi: int, *, ceil: bool
) -> Axis:
    span = effective_kernel(kernel, dilation)
    padded = n + lo + hi
    reach = padded - span
    # PyTorch's ceil_mode lets one window overhang a too-small input; floor never does.
    size = -(-reach // stride) + 1 if ceil else reach // stride + 1
    if (reach < 0 and size < 1) or (reach < 0 and not ceil):
        raise ConvcalcError(
            f"kernel {kernel}{_dilated(kernel, dilation)} is larger than the padded input "
            f"{padded} ({n} + {lo} + {hi}); valid: a kernel spanning at most {padded}, "
            f"or more padding"
        )
    exact = reach % stride == 0
    formula = _floor_formula(n, kernel, stride, dilation, lo, hi, size, exact, ceil)
    if ceil and (size - 1) * stride >= n + lo:
        size -= 1
        formula += f", less 1 = {size}"
    uncovered = max(0, min(n, lo + n - ((size - 1) * stride + span)))
    rounding = Rounding.CEIL if ceil else Rounding.FLOOR
    return Axis(n, kernel, stride, dilation, lo, hi, size, exact, uncovered, rounding, formula)


def _same_axis(
    n: int, kernel: int, stride: int, dilation: int, convention: Convention, *, pooling: bool
) -> Axis:
    lo, hi = same_padding(n, kernel, stride, dilation)
    size = -(-n // stride)
    span = effective_kernel(kernel, dilation)
    uncovered = max(0, n - ((size - 1) * stride + span))
    exact = (n + lo + hi - span) % stride == 0
    total = lo + hi
    formula = (
        f"⌈{n}/{stride}⌉ = {size}; padding max(({size} − 1)·{stride} + "
        f"{_span_text(kernel, dilation)} − {n}, 0) = {total}, split {lo} before, {hi} after"
    )
    notes = []
    if dilation > 1 and stride > 1:
        notes.append("TensorFlow rejects SAME with both dilation > 1 and stride > 1")
    if convention == Convention.TORCH and (pooling or stride > 1):
        what = "pooling" if pooling else "padding='same' with stride > 1"
        notes.append(f"PyTorch has no SAME for {what}; TensorFlow's rule used")
    if convention == Convention.CAFFE:
        notes.append("Caffe has no SAME padding; TensorFlow's rule used")
    return Axis(
        n,
        kernel,
        stride,
        dilation,
        lo,
        hi,
        size,
        exact,
        uncovered,
        Rounding.SAME,
        formula,
        tuple(notes),
    )


def _transposed_tf(
    n: int, kernel: int, stride: int, dilation: int, output_padding: int, rule: PadRule
) -> Axis:
    """Keras's deconv_output_length for SAME/VALID, with or without output_padding."""
    span = effective_kernel(kernel, dilation)
    pad = span // 2 if rule == PadRule.SAME else 0
    if output_padding:
        size = (n - 1) * stride + span - 2 * pad + output_padding
        formula = f"({n} − 1)·{stride} + {span} − 2·{pad} + {output_padding} = {size}"
    elif rule == PadRule.SAME:
        size = n * stride
        formula = f"{n}·{stride} = {size}"
    else:
        size = n * stride + max(span - stride, 0)
        formula = f"{n}·{stride} + max({span} − {stride}, 0) = {size}"
    total = max((n - 1) * stride + span + output_padding - size, 0)
    lo, hi = total // 2, total - total // 2
    return Axis(n, kernel, stride, dilation, lo, hi, size, True, 0, Rounding.TRANSPOSED, formula)


def _explicit_padding(padding: Padding, kernel: int, dilation: int) -> tuple[int, int]:
    if padding == PadRule.VALID:
        return 0, 0
    if padding == PadRule.FULL:
        full = effective_kernel(kernel, dilation) - 1
        return full, full
    if isinstance(padding, tuple):
        lo, hi = padding
    else:
        lo = hi = int(padding)
    if lo < 0 or hi < 0:
        raise ConvcalcError(
            f"padding {min(lo, hi)} is negative; valid: a count of 0 or more, or same/valid/full"
        )
    return lo, hi


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ConvcalcError(f"{name} {value} is not valid: it must be at least 1")


def _check_pool_padding(kernel: int, pad: int, convention: Convention) -> None:
    if convention == Convention.CAFFE:
        if pad >= kernel:
            raise ConvcalcError(
                f"pooling padding {pad} is not smaller than the kernel {kernel} (Caffe's rule)"
            )
    elif pad > kernel // 2:
        raise ConvcalcError(
            f"pooling padding {pad} is more than half the kernel {kernel}; "
            f"valid: at most {kernel // 2}"
        )


def _floor_formula(
    n: int,
    kernel: int,
    stride: int,
    dilation: int,
    lo: int,
    hi: int,
    size: int,
    exact: bool,
    ceil: bool,
) -> str:
    pad = f"2·{lo}" if lo == hi else f"{lo} + {hi}"
    if dilation == 1:
        body = f"{n} + {pad} − {kernel}"
    else:
        body = f"{n} + {pad} − {dilation}·({kernel} − 1) − 1"
    if exact:
        return f"({body})/{stride} + 1 = {size}"
    bracket = "⌈⌉" if ceil else "⌊⌋"
    return f"{bracket[0]}({body})/{stride}{bracket[1]} + 1 = {size}"


def _span_text(kernel: int, dilation: int) -> str:
    return str(kernel) if dilation == 1 else f"{dilation}·({kernel} − 1) + 1"


def _dilated(kernel: int, dilation: int) -> str:
    if dilation == 1:
        return ""
    return f" (dilation {dilation}: spans {effective_kernel(kernel, dilation)})"


def _conv_solutions(n: int, target: int, k: int, s: int, d: int) -> list[Solution]:
    """Paddings p < span with floor((n + 2p - span)/s) + 1 == target, and SAME."""
    span = effective_kernel(k, d)
    # (target-1)s <= n + 2p - span <= (target-1)s + s - 1, solved for p
    lowest = max(0, -(-((target - 1) * s + span - n) // 2))
    highest = min(span - 1, ((target - 1) * s + s - 1 + span - n) // 2)
    last = min(highest, lowest + PADDINGS_SHOWN - 1)
    out = [Solution(k, s, p, d, (n + 2 * p - span) % s == 0) for p in range(lowest, last + 1)]
    if -(-n // s) == target and not any(sol.exact for sol in out):
        lo, hi = same_padding(n, k, s, d)
        out.append(Solution(k, s, PadRule.SAME, d, (n + lo + hi - span) % s == 0))
    return out


def _transposed_solutions(n: int, target: int, k: int, s: int, d: int) -> list[Solution]:
    """Paddings p < span and output paddings op < max(s, d) with
    (n-1)s - 2p + span + op == target."""
    span = effective_kernel(k, d)
    base = (n - 1) * s + span - target  # = 2p - op
    lowest = max(0, -base)
    highest = min(max(s, d) - 1, 2 * (span - 1) - base)
    return [
        Solution(k, s, (base + op) // 2, d, True, True, op)
        for op in range(lowest, min(highest, lowest + 2 * PADDINGS_SHOWN - 1) + 1)
        if (base + op) % 2 == 0
    ]


def _default_strides(scale: int) -> list[int]:
    """Strides 1-4, and up to the scale between input and target (at most 64), and the
    scale itself (a stride equal to it is the natural answer)."""
    return sorted({*range(1, min(max(4, scale), 64) + 1), scale})


def _check_search(what: str, values: list[int]) -> None:
    for value in values:
        if not 1 <= value <= SEARCH_MAX:
            raise ConvcalcError(
                f"--target searches {what}s from 1 to {SEARCH_MAX}; {value} is outside"
            )


def _solution_rank(sol: Solution, *, grows: bool, scale: int) -> tuple[int, ...]:
    pad = sol.padding if isinstance(sol.padding, int) else -1
    span = effective_kernel(sol.kernel, sol.dilation)
    return (
        not sol.exact,
        sol.transposed != grows,
        pad > (span - 1) // 2 + (span - 1) % 2,
        abs(sol.stride - scale),
        sol.dilation,
        sol.output_padding,
        sol.stride,
        sol.kernel,
        pad,
    )
