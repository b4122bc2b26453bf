"""Batched Jacobian (one vmapped backward) against one backward pass per task.

A small shared trunk (an MLP, 32 -> 256 -> 256, batch 128) with ``T`` linear
heads, ``T`` in 2, 4, 8. Each timing includes the forward pass, since a
Jacobian is always computed on a fresh graph. Prints the median times and the
speed-up of :func:`mtl_course.torch.gradients.jacobian` over the loop
(``python benchmarks/jacobian.py``, under a minute on two cores).
"""

from __future__ import annotations

import statistics
import time

import torch
from _threads import parse_threads  # benchmarks/_threads.py (scripts run from benchmarks/)

from mtl_course.torch.gradients import jacobian


def build(T: int):
    torch.manual_seed(0)
    trunk = torch.nn.Sequential(
        torch.nn.Linear(32, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU()
    )
    heads = torch.nn.ModuleList(torch.nn.Linear(256, 1) for _ in range(T))
    x, y = torch.randn(128, 32), torch.randn(128, T)

    def losses() -> list[torch.Tensor]:
        z = trunk(x)
        return [((head(z).squeeze(1) - y[:, t]) ** 2).mean() for t, head in enumerate(heads)]

    return list(trunk.parameters()), losses


def batched(params, losses) -> torch.Tensor:
    return jacobian(losses(), params)


def per_task(params, losses) -> torch.Tensor:
    task_losses = losses()
    rows = []
    for t, loss in enumerate(task_losses):
        grads = torch.autograd.grad(loss, params, retain_graph=t < len(task_losses) - 1)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def main() -> None:
    parse_threads(__doc__.splitlines()[0])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"{'T':>3} {'P':>8} {'batched ms':>11} {'per-task ms':>12} {'speed-up':>9}")
    for T in (2, 4, 8):
        params, losses = build(T)
        torch.testing.assert_close(batched(params, losses), per_task(params, losses))
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(30):  # interleaved, so load from other processes hits both alike
            for f, bucket in ((batched, times[0]), (per_task, times[1])):
                start = time.perf_counter()
                f(params, losses)
                bucket.append(time.perf_counter() - start)
        t_batched, t_loop = statistics.median(times[0]), statistics.median(times[1])
        P = sum(p.numel() for p in params)
        print(f"{T:>3} {P:>8} {1e3 * t_batched:>11.2f} {1e3 * t_loop:>12.2f} {t_loop / t_batched:>9.2f}")


if __name__ == "__main__":
    main()
