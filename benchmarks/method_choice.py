"""Which method can I afford? Time and memory of one training step of every method, at a realistic scale.

The model: a hard-sharing MLP whose trunk has about 25 million parameters
(1024 -> 4096 -> 4608 -> 512, ReLU), ``T = 10`` regression tasks with a linear
head each, batch 64, Adam, float32, trained by ``mtl_course.torch.fit`` exactly
as a user calls it (``fit(model, data, tasks, method=name)``). A float32
Jacobian of the trunk would be ``T x P x 4`` bytes, about 1 GB here.

Every method runs in its own process, so its peak memory is its own: the
table reports the process CPU time per step (median over rounds) and the
peak resident memory above what the model and the data hold (so it includes
the optimizer's state, the activations and whatever the method allocates).
Besides the package's methods, two cheaper variants are measured or derived:

* ``loop: MGDA-UB``: MGDA on the gradients of the losses with respect to the
  shared representation (Sener and Koltun, "Multi-Task Learning as
  Multi-Objective Optimization", NeurIPS 2018), then one backward of the
  weighted loss (a different direction from MGDA's). ``fit`` does not offer
  it, so it runs in a hand-written loop, next to the same loop with equal
  weights (``loop: equal``), its fair baseline;
* ``every k steps``: an aggregator's weights recomputed every ``k`` steps and
  reused in between (a derived row: ``((k - 1) * equal + upgrad) / k``).

    python benchmarks/method_choice.py [--rounds 3] [--steps 4] [--threads 1] [--small]

``--small`` runs a 1/16-width model in seconds, to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("equal", "uncertainty", "dwa", "rlw", "gradnorm",
           "mean", "mgda", "pcgrad", "cagrad", "nash_mtl", "imtl_g", "aligned_mtl", "upgrad",
           "loop: equal", "loop: MGDA-UB")
TASKS = 10
BATCH = 64


def _memory(field: str) -> float:
    """A ``/proc/self/status`` memory field in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(method: str, small: bool, steps: int, rounds: int, threads: int) -> dict:
    """Run in a fresh process: CPU seconds per step (median of ``rounds``) and peak extra MB."""
    import numpy as np
    import torch

    from mtl_course import torch as mtl
    from mtl_course.core.aggregation import mgda_weights
    from mtl_course.data import MultiTaskSplit
    from mtl_course.torch.gradients import representation_jacobian

    torch.set_num_threads(threads)
    scale = 16 if small else 1
    sizes = (1024 // scale, 4096 // scale, 4608 // scale, 512 // scale)
    names = [f"t{t}" for t in range(TASKS)]
    mtl.seed_everything(0)
    model = mtl.HardSharing(mtl.mlp(sizes, output_activation=True), {n: mtl.mlp((sizes[-1], 1)) for n in names})
    rng = np.random.default_rng(0)
    n = BATCH * steps
    data = MultiTaskSplit(rng.standard_normal((n, sizes[0])).astype(np.float32),
                          {name: rng.standard_normal((n, 1)).astype(np.float32) for name in names})
    tasks = {name: "mse" for name in names}
    P = sum(p.numel() for p in model.shared_parameters())

    if method.startswith("loop: "):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x = torch.as_tensor(data.x)
        ys = [torch.as_tensor(data.y[name]) for name in names]

        def run() -> None:
            for b in range(steps):
                rows = slice(b * BATCH, (b + 1) * BATCH)
                z = model.representation(x[rows])
                out = model.heads_forward(z)
                losses = [torch.nn.functional.mse_loss(out[name], y[rows]) for name, y in zip(names, ys)]
                if method == "loop: MGDA-UB":
                    Jz = representation_jacobian(losses, z)
                    w = torch.as_tensor(mgda_weights((Jz @ Jz.T).double().numpy()), dtype=z.dtype)
                else:
                    w = torch.ones(len(losses), dtype=z.dtype)
                opt.zero_grad(set_to_none=True)
                # MGDA-UB weights the shared gradient; each head still gets its own loss's gradient.
                (w * torch.stack(losses)).sum().backward(retain_graph=True)
                heads = [p for name in names for p in model.task_parameters(name)]
                for p, g in zip(heads, torch.autograd.grad(torch.stack(losses).sum(), heads)):
                    p.grad = g
                opt.step()
    else:
        def run() -> None:
            mtl.fit(model, data, tasks, method=method, epochs=1, batch_size=BATCH, lr=1e-3, progress=False)

    # Peak memory counts from here, the model and the data built: the warm-up's first allocations
    # (optimizer state, activations, any T x P Jacobian) are the ones the allocator may keep afterwards.
    baseline = _memory("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    run()  # warm-up: allocations, optimizer state, the Gramian recorder
    times = []
    for _ in range(rounds):
        start = time.process_time()
        run()
        times.append((time.process_time() - start) / steps)
    return {"method": method, "seconds": statistics.median(times), "best": min(times),
            "peak_mb": _memory("VmHWM") - baseline, "P": P}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="steps per round (one epoch of fit)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--only", help="comma-separated methods to measure (default: all)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one method in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.small, args.steps, args.rounds, args.threads)))
        return

    rows = []
    methods = [m for m in METHODS if not args.only or m in args.only.split(",")]
    for method in methods:
        command = [sys.executable, __file__, "--one", method, "--rounds", str(args.rounds),
                   "--steps", str(args.steps), "--threads", str(args.threads)] + (["--small"] if args.small else [])
        out = subprocess.run(command, capture_output=True, text=True, check=True,
                             env={**__import__("os").environ, "TQDM_DISABLE": "1"})
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  measured {method}", file=sys.stderr, flush=True)

    P = rows[0]["P"]
    seconds = {r["method"]: r["seconds"] for r in rows}
    print(f"torch {__import__('torch').__version__}, CPU, {args.threads} thread(s); trunk P = {P:,} parameters, "
          f"T = {TASKS} tasks, batch {BATCH}; a float32 T x P Jacobian would be {4 * TASKS * P / 2**20:,.0f} MB")
    print(f"{'method':<16}{'s / step':>10}{'x equal':>9}{'peak extra MB':>15}")
    for r in rows:  # each against its own baseline: fit's equal weighting, or the hand-written loop's
        base = seconds.get("loop: equal" if r["method"].startswith("loop: ") else "equal", float("nan"))
        print(f"{r['method']:<16}{r['seconds']:>10.3f}{r['seconds'] / base:>9.2f}{r['peak_mb']:>15.0f}")
    if "equal" in seconds and "upgrad" in seconds:
        for k in (4, 16):
            derived = ((k - 1) * seconds["equal"] + seconds["upgrad"]) / k
            print(f"{'upgrad every ' + str(k):<16}{derived:>10.3f}{derived / seconds['equal']:>9.2f}{'(derived)':>15}")


if __name__ == "__main__":
    main()
