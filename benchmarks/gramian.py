"""The full aggregated UPGrad step: the layer-wise Gramian path vs one backward pass per task.

One step = forward of a hard-sharing model, the task losses, the shared
parameters' UPGrad direction, every head's own gradient, an SGD step.

* ``loop``: one ``torch.autograd.grad`` per task on the shared parameters, the
  rows stacked into ``J`` (``T x P``), ``upgrad(J)``.
* ``gramian``: what ``fit`` runs (:class:`mtl_course.torch.gramian.LayerGramian`):
  one batched backward to the layer outputs, ``G`` layer by layer, the UPGrad
  weights from ``G``, one backward of ``sum_t w_t L_t``. No ``T x P`` tensor.
* ``batched J``: the previous fit path, :func:`mtl_course.torch.gradients.jacobian` (one
  vmapped backward, still ``T x P``), for reference.
* ``MGDA-UB``: MGDA on the gradients with respect to the shared representation
  (Sener and Koltun, 2018), then one backward of the weighted loss: the cheap
  upper-bound variant, for comparison (a different method, not the same direction).

Trunks: an MLP 64-256-256 (batch 64), a small CNN on 3x16x16 inputs (two
3x3 convolutions, 16 and 32 channels, then a 2048-64 linear layer; batch 32),
and a wider MLP 64-1024-1024 (batch 64) where the batch is small next to the
width, one linear head per task, ``T`` in 2, 4, 8, 16.

What bounds the ratio (multiply-adds; ``N`` rows of the batch, ``T`` tasks):
the loop pays per task a backward with input and weight gradients, then
``T^2 P`` for ``J J^T``; the Gramian path pays per task a backward with input
gradients only, then per linear layer ``N^2 d_in + T N^2 d_out + T^2 N d_out``
(the Gram trick, about ``N / d_in`` of a weight gradient per task) or the
per-task weight gradients when cheaper, and per convolution the per-task
weight gradients (the Gram trick there would need ``(N x positions)^2``), then
one backward of the weighted loss. So a linear layer approaches half the
loop's cost when ``N << d_in``, and a convolution costs what the loop costs.

Why the 0.6 target is met on the wide MLP only (CPU, one thread). Counted in
multiply-adds as above, the ratio at T = 8 and 16 is 0.79 and 0.71 for the small
MLP (``N = 64`` rows against ``d_in`` = 64 and 256: the Gram trick costs about
what the weight gradients it replaces cost, and the weighted loss adds one more
full backward), 0.97 and 0.88 for the small CNN (both paths compute its
convolutions' per-task weight gradients), and 0.66 and 0.57 for the wide MLP.
So on the two small trunks the target is out of reach by the arithmetic alone.
Their measured ratios sit above the counts (about 0.8-0.9 and 1.0-1.1) because of
per-op overhead that the Gramian path does not remove: both paths make ``T``
small backward calls, and about a third of each (0.07 of 0.21 ms for the small
MLP's per-task backward, measured with a 4-row batch) is the autograd engine's
fixed cost per call and per op, not arithmetic; the Gramian path adds a few
dozen small ops of its own (stacking the ``D_t``, the per-layer blocks). The
wide MLP's measured 0.3-0.4 is below its count because its loop is bound by
memory more than by multiply-adds: it allocates, writes and reads back
``T x P`` numbers (35-70 MB: the per-task gradients, ``J``, then ``J J^T``).
What a GPU would change (not measured: no GPU is lent here): the fixed cost per
op becomes kernel-launch latency, paid alike by both paths, so the small trunks
stay launch-bound, near their CPU ratios or closer to 1; layers large enough to
keep a GPU busy follow the multiply-add counts; and the memory saving matters
most there: ``J`` of a 25M-parameter trunk with 10 tasks takes 1 GB of device
memory per step, while the Gramian path holds ``T`` copies of the recorded
layers' activations.

Memory: the Gramian path holds the output gradients ``D_t`` of every recorded
layer at once (``T`` x the layer's activations), never ``T x P``; that is
far below ``T x P`` for wide linear layers and small batches, but above it for
convolutions, whose activation maps outnumber their weights. Times are process CPU time
per step over interleaved rounds (best and median); the ratio is
``gramian / loop`` (target <= 0.6 at T >= 8). Peak memory is the highest total
of the CPU memory timeline of ``torch.profiler`` over one step, next to the
size of a float32 ``T x P`` Jacobian.

    python benchmarks/gramian.py [--rounds 7] [--steps 5] [--threads 1] [--no-memory]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from _threads import parse_threads  # benchmarks/_threads.py (scripts run from benchmarks/)
from torch import nn

from mtl_course.core.aggregation import mgda_weights
from mtl_course.torch.aggregators import upgrad
from mtl_course.torch.gradients import aggregate_backward, representation_jacobian, set_gradients
from mtl_course.torch.gramian import LayerGramian
from mtl_course.torch.models import HardSharing


def build(kind: str, T: int) -> tuple[int, dict, nn.Module]:
    """The shared parameter count, the four timed steps, and the model they train."""
    torch.manual_seed(0)
    if kind in ("MLP", "wide MLP"):
        width = 256 if kind == "MLP" else 1024
        trunk = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        x = torch.randn(64, 64)
    else:
        trunk = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                              nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                              nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU())
        x, width = torch.randn(32, 3, 16, 16), 64
    names = [f"t{t}" for t in range(T)]
    model = HardSharing(trunk, {n: nn.Linear(width, 1) for n in names})
    y = torch.randn(x.shape[0], T)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def losses(outputs):
        return [((outputs[n].squeeze(1) - y[:, t]) ** 2).mean() for t, n in enumerate(names)]

    def own_gradients(task_losses, retain=False):
        own = [p for n in names for p in model.task_parameters(n)]
        for p, g in zip(own, torch.autograd.grad(torch.stack(task_losses).sum(), own, retain_graph=retain)):
            p.grad = g

    def loop():
        task_losses = losses(model(x))
        shared = model.shared_parameters()
        rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, shared, retain_graph=True)])
                for loss in task_losses]
        set_gradients(shared, upgrad(torch.stack(rows)))
        own_gradients(task_losses)
        opt.step()

    recorder = LayerGramian(model)
    shared = list(model.shared_parameters())

    def gramian():  # fit's aggregated step: aggregate_backward also gives the heads their own gradients
        opt.zero_grad(set_to_none=True)
        with recorder:
            outputs = model(x)
        aggregate_backward(losses(outputs), shared, upgrad, recorder=recorder)
        opt.step()

    def batched():
        opt.zero_grad(set_to_none=True)
        aggregate_backward(losses(model(x)), shared, upgrad)
        opt.step()

    def mgda_ub():
        z = model.representation(x)
        task_losses = losses(model.heads_forward(z))
        Jz = representation_jacobian(task_losses, z)
        w = torch.as_tensor(mgda_weights((Jz @ Jz.T).double().numpy()), dtype=z.dtype)
        shared = model.shared_parameters()
        grads = torch.autograd.grad((w * torch.stack(task_losses)).sum(), shared, retain_graph=True)
        for p, g in zip(shared, grads):
            p.grad = g
        own_gradients(task_losses)
        opt.step()

    P = sum(p.numel() for p in model.shared_parameters())
    return P, {"loop": loop, "gramian": gramian, "batched J": batched, "MGDA-UB": mgda_ub}, model


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2: the profiler's C++ side prints a start and a stop line per run."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_mb(step) -> float:
    from torch.profiler import ProfilerActivity, profile

    step()  # warm
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                                  with_stack=True) as prof:
        step()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # the CPU memory timeline has no replacement yet; the notice names CUDA-only tools
        warnings.filterwarnings("ignore", message=".*export_memory_timeline", category=FutureWarning)
        path = Path(folder) / "timeline.json"
        prof.export_memory_timeline(str(path), device="cpu")
        _, sizes = json.loads(path.read_text())
    return max(sum(s) for s in sizes) / 2**20


def seconds_per_step(step, steps: int) -> float:
    start = time.process_time()  # CPU time: not the waits when other jobs hold the cores
    for _ in range(steps):
        step()
    return (time.process_time() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the profiler's peak memory")
    args = parse_threads(__doc__.splitlines()[0], parser)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; ms of process time per step "
          f"(median of {args.rounds} interleaved rounds of {args.steps} steps); ratio = gramian / loop")
    header = (f"{'trunk':<8} {'T':>3} {'P':>7} {'loop':>7} {'gramian':>8} {'batched J':>10} {'MGDA-UB':>8} "
              f"{'ratio best':>11} {'ratio median':>13}")
    if not args.no_memory:
        header += f" {'T x P MB':>9} {'peak MB loop':>13} {'gramian':>8} {'batched J':>10} {'MGDA-UB':>8}"
    print(header)
    for kind in ("MLP", "CNN", "wide MLP"):
        for T in (2, 4, 8, 16):
            P, steps, _ = build(kind, T)
            for step in steps.values():
                step()  # warm-up
            times: dict[str, list[float]] = {name: [] for name in steps}
            for _ in range(args.rounds):
                for name, step in steps.items():
                    times[name].append(1e3 * seconds_per_step(step, args.steps))
            ratios = [g / loop for g, loop in zip(times["gramian"], times["loop"])]
            med = {name: statistics.median(v) for name, v in times.items()}
            line = (f"{kind:<8} {T:>3} {P:>7} {med['loop']:>7.2f} {med['gramian']:>8.2f} {med['batched J']:>10.2f} "
                    f"{med['MGDA-UB']:>8.2f} {min(ratios):>11.2f} {statistics.median(ratios):>13.2f}")
            if not args.no_memory:
                peaks = {name: peak_mb(step) for name, step in steps.items()}
                line += (f" {4 * T * P / 2**20:>9.2f} {peaks['loop']:>13.2f} {peaks['gramian']:>8.2f} "
                         f"{peaks['batched J']:>10.2f} {peaks['MGDA-UB']:>8.2f}")
            print(line, flush=True)


if __name__ == "__main__":
    main()
