r"""Conclusions from paired seeds: one verdict line per comparison.

The course draws a conclusion "A beats B" only when the paired interval of
the difference excludes zero (DESIGN section 6). Seed :math:`s` gives both
methods the same data and initial weights, so the comparison is made on the
per-seed differences

.. math::

    d_s = a_s - b_s, \qquad \bar d = \frac1n \sum_{s=1}^n d_s, \qquad
    s_d^2 = \frac{1}{n-1} \sum_{s=1}^n (d_s - \bar d)^2,

and Student's :math:`t` interval at confidence :math:`c`

.. math::

    \bar d \pm t_{n-1,\,(1+c)/2}\, \frac{s_d}{\sqrt n}

(computed by :func:`scipy.stats.t.interval` with the standard error of
:func:`scipy.stats.sem`; the same interval as
``scipy.stats.ttest_rel(a, b).confidence_interval(c)``). Pairing removes the
variation both methods share (the draw of the data, the initialisation), so
the paired interval is narrower than two overlapping mean-and-std bars
suggest (Student 1908; any statistics text, e.g. Wasserman 2004, ch. 10).

This module is framework-free (numpy and scipy only) so that both twins and
every chapter print verdicts the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

__all__ = ["Verdict", "format_spread", "mean_spread", "paired_verdict", "spread_decimals"]


@dataclass(frozen=True)
class Verdict:
    """The paired comparison of two methods over the same seeds.

    ``str(verdict)`` is the verdict line a chapter prints, for example
    ``"soft L2 beats separate: mean difference -0.0123, 95% CI [-0.0201, -0.0045],
    soft L2 better on 9 of 10 seeds"``.

    Attributes:
        names: the two methods' names, ``(A, B)``.
        mean_difference: :math:`\\bar d`, the mean of ``a - b``.
        low, high: the paired :math:`t` interval of the mean difference.
        wins: the number of seeds on which A is strictly better than B.
        n: the number of seeds.
        confidence: the interval's confidence level.
        lower_is_better: the direction of the scores (True for errors and losses).
        digits: significant digits of the numbers in the verdict line.

    Examples:
        >>> verdict = paired_verdict([0.10, 0.12, 0.11], [0.20, 0.21, 0.19], names=('MTL', 'STL'))
        >>> verdict.winner, verdict.wins, verdict.n
        ('MTL', 3, 3)
        >>> print(verdict)
        MTL beats STL: mean difference -0.09, 95% CI [-0.115, -0.0652], MTL better on 3 of 3 seeds
    """

    names: tuple[str, str]
    mean_difference: float
    low: float
    high: float
    wins: int
    n: int
    confidence: float = 0.95
    lower_is_better: bool = True
    digits: int = 3

    @property
    def established(self) -> bool:
        """Whether the interval excludes zero (a difference is established)."""
        return self.low > 0.0 or self.high < 0.0

    @property
    def winner(self) -> str | None:
        """The name of the better method, or None when no difference is established."""
        if not self.established:
            return None
        a_lower = self.high < 0.0
        return self.names[0] if a_lower == self.lower_is_better else self.names[1]

    @property
    def loser(self) -> str | None:
        """The name of the worse method, or None when no difference is established."""
        winner = self.winner
        if winner is None:
            return None
        return self.names[1] if winner == self.names[0] else self.names[0]

    def line(self, digits: int | None = None) -> str:
        """The verdict line, numbers rounded to ``digits`` significant digits."""
        g = f".{self.digits if digits is None else int(digits)}g"
        a, b = self.names
        head = (f"{self.winner} beats {self.loser}" if self.established
                else f"{a} vs {b}: no difference established at {self.n} seeds")
        percent = f"{100 * self.confidence:g}%"
        return (f"{head}: mean difference {self.mean_difference:{g}}, "
                f"{percent} CI [{self.low:{g}}, {self.high:{g}}], "
                f"{a} better on {self.wins} of {self.n} seeds")

    def rounded_line(self) -> str:
        """The verdict line with its numbers in fixed point, to the leading digit of the interval's half-width.

        The seeds' spread sets the precision: a half-width of 0.11 prints one decimal, of 0.03 two, of 4 none.
        While a difference is established and a bound would round to 0, one more decimal is shown
        (at most 6), so the printed interval still excludes 0. Digits below the spread are the first
        to change on another machine; this line leaves them out. A number that rounds to zero
        (the difference, or a bound of an interval that contains zero) prints without a sign.

        Examples:
            >>> v = paired_verdict([1.31, 1.52, 1.18, 1.44, 1.29], [1.0, 1.1, 1.05, 1.2, 0.98], names=('b0', 'a0'))
            >>> print(v.rounded_line())
            a0 beats b0: mean difference 0.3, 95% CI [0.1, 0.4], b0 better on 0 of 5 seeds
        """
        half_width = (self.high - self.low) / 2
        decimals = max(0, -int(np.floor(np.log10(half_width)))) if half_width > 0 else 3
        while self.established and decimals < 6 and 0 in (round(self.low, decimals), round(self.high, decimals)):
            decimals += 1
        head = self.line().split(": mean difference")[0]

        def fixed(value: float) -> str:
            text = f"{value:.{decimals}f}"
            return f"{0.0:.{decimals}f}" if float(text) == 0 else text  # no "-0"

        return (f"{head}: mean difference {fixed(self.mean_difference)}, "
                f"{100 * self.confidence:g}% CI [{fixed(self.low)}, {fixed(self.high)}], "
                f"{self.names[0]} better on {self.wins} of {self.n} seeds")

    def __str__(self) -> str:
        return self.line()


def _scores(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a sequence of numbers: {error}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one score per seed), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf: {array.tolist()}")
    return array


def paired_verdict(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                   names: tuple[str, str] = ("A", "B"), lower_is_better: bool = True,
                   confidence: float = 0.95, digits: int = 3) -> Verdict:
    r"""Compare the scores ``a`` and ``b`` of two methods, seed by seed.

    ``a[s]`` and ``b[s]`` must come from the same seed :math:`s`. The verdict
    is "A beats B" when the paired :math:`t` interval of :math:`d_s = a_s - b_s`
    (see the module docstring) lies entirely on A's better side of zero,
    "B beats A" when it lies on B's side, and "no difference established at n
    seeds" when it contains zero. When every difference is the same number the
    interval collapses to that number (the limit of the :math:`t` interval as
    :math:`s_d \to 0`).

    Args:
        a, b: one score per seed for each method (same seeds, same order).
        names: the two methods' names, used in the verdict line.
        lower_is_better: True for errors and losses, False for accuracies.
        confidence: the interval's confidence level, in (0, 1).
        digits: significant digits in the printed line.

    Returns:
        A :class:`Verdict`; ``print(verdict)`` prints its line.

    Raises:
        ValueError: different lengths, fewer than two seeds, NaN or inf, a
            confidence outside (0, 1), or two equal names.
        TypeError: non-numeric scores.

    Examples:
        >>> print(paired_verdict([0.10, 0.12, 0.11], [0.20, 0.21, 0.19], names=('MTL', 'STL')))
        MTL beats STL: mean difference -0.09, 95% CI [-0.115, -0.0652], MTL better on 3 of 3 seeds
        >>> paired_verdict([0.10, 0.30, 0.20], [0.20, 0.10, 0.25]).established  # the interval contains 0
        False
    """
    a_arr, b_arr = _scores("a", a), _scores("b", b)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"a and b must hold one score per seed for the same seeds, got "
                         f"{len(a_arr)} and {len(b_arr)} scores")
    n = len(a_arr)
    if n < 2:
        raise ValueError(f"a paired interval needs at least 2 seeds, got {n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    names = (str(names[0]), str(names[1]))
    if names[0] == names[1]:
        raise ValueError(f"the two methods need different names, got {names}")
    with np.errstate(over="ignore", invalid="ignore"):
        d = a_arr - b_arr
    if not np.all(np.isfinite(d)):
        raise ValueError("a - b overflows: rescale the scores")
    mean = float(d.mean())
    if np.ptp(d) == 0.0:
        low = high = float(d[0])
        mean = low
    else:
        # the interval scales with d: compute it on d / max|d| so that tiny or huge
        # scores neither underflow nor overflow in the variance
        scale = float(np.abs(d).max())
        unit = d / scale
        low, high = (scale * float(x) for x in _scipy_stats.t.interval(
            confidence, n - 1, loc=unit.mean(), scale=_scipy_stats.sem(unit)))
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("the t interval is not finite: rescale the scores")
    better = d < 0.0 if lower_is_better else d > 0.0
    return Verdict(names=names, mean_difference=mean, low=low, high=high,
                   wins=int(better.sum()), n=n, confidence=float(confidence),
                   lower_is_better=bool(lower_is_better), digits=int(digits))


def spread_decimals(spread: float, value: float | None = None, margin: float = 0.1, most: int = 6) -> int:
    """Decimals to print a number with, set by the place of the leading digit of its spread.

    A spread of 0.03 gives 2 decimals, of 0.19 one, of 4 none, of 60 -1 (round to tens; ``most``
    when the spread is 0).
    When ``value`` is given and lies within ``margin * spread`` of a rounding boundary at that place
    (0.405 at two decimals), one decimal fewer is returned (never more than one: a value that is near
    a boundary at both places keeps the coarser one, and a value that would print as 0 keeps its digit):
    that digit is the one another machine would flip. ``margin`` is how far a result moves between machines, as a fraction of the
    seeds' spread: small for short fixed-length runs, about 1/3 for long runs whose early-stopping
    epoch can move with the last bits.

    Examples:
        >>> spread_decimals(0.03), spread_decimals(0.19), spread_decimals(4.2), spread_decimals(60.0), spread_decimals(0.0)
        (2, 1, 0, -1, 6)
        >>> spread_decimals(0.03, value=0.4049), spread_decimals(0.03, value=0.4011)
        (1, 2)
    """
    if not (math.isfinite(spread) and spread >= 0):
        raise ValueError(f"spread must be finite and >= 0, got {spread}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    decimals = min(most, -math.floor(math.log10(spread))) if spread > 0 else most
    if (value is not None and _near_boundary(value, decimals, margin * spread)
            and round(abs(value), decimals - 1) > 0):  # never coarser than the value itself
        decimals -= 1
    return decimals


def _near_boundary(value: float, decimals: int, tolerance: float) -> bool:
    """Whether ``value`` lies within ``tolerance`` of a rounding boundary at ``decimals`` decimals."""
    unit = 10.0 ** -decimals
    return abs((abs(value) / unit) % 1.0 - 0.5) * unit <= tolerance


def mean_spread(values: Sequence[float] | np.ndarray, ddof: int = 0, sign: bool = False,
                margin: float = 0.1, show_spread: bool = True) -> str:
    """``"mean ± std"`` of ``values`` (one per seed), each with the digits the seeds' spread justifies.

    The std is printed to its leading digit and the mean to the same place, coarser while the mean
    lies within ``margin * std`` of a rounding boundary (:func:`spread_decimals`). ``sign`` prints a
    ``+`` on non-negative means. ``show_spread=False`` prints the mean alone (where the std's own
    leading digit moves between machines).

    Examples:
        >>> mean_spread([0.38, 0.41, 0.43, 0.40, 0.39])
        '0.40 ± 0.02'
        >>> mean_spread([0.38, 0.41, 0.43, 0.40, 0.39], margin=1 / 3), mean_spread([0.38, 0.41], show_spread=False)
        ('0.4 ± 0.02', '0.4')
        >>> mean_spread([-0.5, -0.9, -0.7, -1.1, -0.8])
        '-0.8 ± 0.2'
    """
    array = _scores("values", values)
    std = float(array.std(ddof=ddof)) if array.size > ddof else 0.0
    text = format_spread(float(array.mean()), std, sign=sign, margin=margin)
    return text if show_spread else text.split(" ± ")[0]


def format_spread(value: float, spread: float, sign: bool = False, margin: float = 0.1, most: int = 6) -> str:
    """``"value ± spread"`` with the digits :func:`mean_spread` uses, from a value and its spread
    (a std over seeds, or an interval's half-width); ``most`` decimals when the spread is 0.

    Examples:
        >>> format_spread(-0.3217, 0.19, sign=True), format_spread(1.0, 0.0, most=2), format_spread(-163.3, 113.1)
        ('-0.3 ± 0.2', '1.00 ± 0.00', '-200 ± 100')
    """
    spread_places = spread_decimals(spread, most=most)
    decimals = spread_decimals(spread, value=value, margin=margin, most=most)
    plus = "+" if sign else ""
    shown = round(value, decimals) if decimals < 0 else value  # tens, hundreds: round, print no decimals
    text = f"{shown:{plus}.{max(decimals, 0)}f}"
    if float(text) == 0:  # no "-0"
        text = f"{0.0:{plus}.{max(decimals, 0)}f}"
    shown_spread = round(spread, spread_places) if spread_places < 0 else spread
    return f"{text} ± {shown_spread:.{max(spread_places, 0)}f}"
