"""Time every gradient aggregator against the mean and against torchjd's same aggregator.

For Jacobians ``J`` of shape ``T x P`` (``T`` in 2, 4, 8, 16; ``P`` in 1e4,
1e6; float32, CPU), prints the median time of each aggregator in
``mtl_course.torch.aggregators``, its ratio to ``mean`` and its ratio to
torchjd's implementation of the same method run in the same process
(ratio < 1: ours is faster). Run: ``python benchmarks/aggregators.py``
(about two minutes on two cores).
"""

from __future__ import annotations

import statistics
import time
import warnings

import torch
from _threads import parse_threads  # benchmarks/_threads.py (scripts run from benchmarks/)
import torchjd.aggregation as A

from mtl_course.torch import aggregators as agg


def torchjd_aggregators(T: int) -> dict:
    """torchjd's aggregators with the conventions of ours (see tests/test_aggregators.py)."""
    return {
        "mean": A.Mean(),
        "mgda": A.MGDA(),
        "pcgrad": A.PCGrad(),
        "cagrad": A.CAGrad(c=0.5),
        # stateful: one instance reused across calls, as in training; no norm clipping
        "nash_mtl": A.NashMTL(n_tasks=T, max_norm=0.0),
        "imtl_g": A.IMTLG(),
        "aligned_mtl": A.AlignedMTL(),
        "upgrad": A.UPGrad(),
    }


def median_seconds(ours, theirs, J: torch.Tensor, repeats: int) -> tuple[float, float]:
    """Median times of two implementations, interleaved so that load from other
    processes affects both alike."""
    ours(J)  # warm-up (and cvxpy's problem construction for torchjd's Nash-MTL)
    theirs(J)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for f, bucket in ((ours, times[0]), (theirs, times[1])):
            start = time.perf_counter()
            f(J)
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parse_threads(__doc__.splitlines()[0])
    warnings.simplefilter("ignore")  # cvxpy's "problem is not DPP" notice
    generator = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 J on CPU")
    print(f"{'T':>3} {'P':>9} {'method':<12} {'ours ms':>9} {'torchjd ms':>11} {'vs mean':>8} {'vs torchjd':>10}")
    for P, repeats in ((10_000, 25), (1_000_000, 11)):
        for T in (2, 4, 8, 16):
            J = torch.randn(T, P, generator=generator)
            J[0] *= -2.0  # conflicts
            theirs = torchjd_aggregators(T)
            mean_time = None
            for name, ours in agg.AGGREGATORS.items():
                f = (lambda J: ours(J, generator=0)) if name == "pcgrad" else ours
                t_ours, t_theirs = median_seconds(f, theirs[name], J, repeats)
                mean_time = mean_time or t_ours
                print(
                    f"{T:>3} {P:>9.0e} {name:<12} {1e3 * t_ours:>9.2f} {1e3 * t_theirs:>11.2f} "
                    f"{t_ours / mean_time:>8.1f} {t_ours / t_theirs:>10.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
