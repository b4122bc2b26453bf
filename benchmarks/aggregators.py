"""Time every gradient aggregator against the mean and against torchjd's same aggregator.

For Jacobians ``J`` of shape ``T x P`` (``T`` in 2, 4, 8, 16; ``P`` in 1e4,
1e6; float32, CPU), prints the median time of each aggregator in
``mtl_course.torch.aggregators``, its ratio to ``mean`` and its ratio to
torchjd's implementation of the same method run in the same process
(ratio < 1: ours is faster): the ratio of the medians and the ratio of the
best times, both over interleaved runs. Run: ``python benchmarks/aggregators.py``
(about two minutes on two cores); ``--methods mean --repeats 201`` times only
``mean`` (issue 17 asks for it within 1.05x of torchjd's ``Mean``, which does
no finiteness check); with ``mean`` it also times the product without the check
(``mv, no check``), the floor a check that reads the result adds to: one more
read of ``P`` numbers, about ``1 / (T + 2)`` of the product's memory traffic.
Times are process CPU time by default, as in
benchmarks/gramian.py: on a machine shared with other jobs the wall clock also
counts the waits while they hold the cores (``--clock wall`` for wall time).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torchjd.aggregation as A
from _threads import parse_threads  # benchmarks/_threads.py (scripts run from benchmarks/)

from mtl_course.torch import aggregators as agg


def torchjd_aggregators(T: int) -> dict:
    """torchjd's aggregators with the conventions of ours (see tests/torch/test_aggregators.py)."""
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


def interleaved_seconds(ours, theirs, J: torch.Tensor, repeats: int,
                        clock=time.process_time) -> tuple[list[float], list[float]]:
    """The times of two implementations, interleaved so that load from other
    processes affects both alike."""
    ours(J)  # warm-up (and cvxpy's problem construction for torchjd's Nash-MTL)
    theirs(J)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for f, bucket in ((ours, times[0]), (theirs, times[1])):
            start = clock()
            f(J)
            bucket.append(clock() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(agg.AGGREGATORS), choices=list(agg.AGGREGATORS))
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per method and size (default: 25 at P=1e4, 11 at P=1e6)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="process CPU time (default) or wall-clock time")
    args = parse_threads(__doc__.splitlines()[0], parser)
    warnings.simplefilter("ignore")  # cvxpy's "problem is not DPP" notice
    generator = torch.Generator().manual_seed(0)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 J on CPU, "
          f"{'process CPU' if args.clock == 'cpu' else 'wall-clock'} time, median (and best) of interleaved runs")
    print(f"{'T':>3} {'P':>9} {'method':<12} {'ours ms':>9} {'torchjd ms':>11} {'vs mean':>8} "
          f"{'vs torchjd':>10} {'(best)':>7}")
    for P, repeats in ((10_000, args.repeats or 25), (1_000_000, args.repeats or 11)):
        for T in (2, 4, 8, 16):
            J = torch.randn(T, P, generator=generator)
            J[0] *= -2.0  # conflicts
            theirs = torchjd_aggregators(T)
            mean_time = None
            for name in args.methods:
                ours = agg.AGGREGATORS[name]
                f = (lambda J, ours=ours: ours(J, generator=0)) if name == "pcgrad" else ours
                times_ours, times_theirs = interleaved_seconds(f, theirs[name], J, repeats, clock)
                t_ours, t_theirs = statistics.median(times_ours), statistics.median(times_theirs)
                mean_time = mean_time or t_ours
                print(
                    f"{T:>3} {P:>9.0e} {name:<12} {1e3 * t_ours:>9.3f} {1e3 * t_theirs:>11.3f} "
                    f"{t_ours / mean_time:>8.1f} {t_ours / t_theirs:>10.2f} "
                    f"{min(times_ours) / min(times_theirs):>7.2f}",
                    flush=True,
                )
            if "mean" in args.methods:  # the floor: the product alone, without the finiteness check
                w = torch.full((T,), 1.0 / T)
                times_mv, times_theirs = interleaved_seconds(lambda J, w=w: torch.mv(J.T, w), theirs["mean"], J,
                                                             repeats, clock)
                t_mv, t_theirs = statistics.median(times_mv), statistics.median(times_theirs)
                print(f"{T:>3} {P:>9.0e} {'mv, no check':<12} {1e3 * t_mv:>9.3f} {1e3 * t_theirs:>11.3f} "
                      f"{'':>8} {t_mv / t_theirs:>10.2f} {min(times_mv) / min(times_theirs):>7.2f}", flush=True)


if __name__ == "__main__":
    main()
