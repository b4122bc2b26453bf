r"""Data-parallel multi-task training with ``torch.distributed``: a script and its pieces.

Run it as several CPU processes (gloo backend; nccl when every process has a GPU)::

    python -m mtl_course.torch.distributed_train --nproc 2 --method mgda --steps 20
    torchrun --nproc_per_node 2 -m mtl_course.torch.distributed_train --method equal

Each replica takes its shard of the same global batch
(:func:`mtl_course.core.data_parallel.shard`) and

- for a loss weighting ("equal"), back-propagates :math:`\sum_t w_t L_t^{(r)}`
  through ``DistributedDataParallel``, which all-reduces (averages) the
  gradients during the backward pass;
- for a gradient aggregator ("mgda", "pcgrad", ...), computes its local
  Jacobian :math:`J^{(r)}` of the task losses with respect to the shared
  parameters (and the gradients of the task heads), **all-reduces the Jacobian**
  to :math:`J = \frac1R \sum_r J^{(r)}`, and only then aggregates, so every
  replica applies the same direction :math:`A(J)`, the one a single process
  computes on the whole global batch. Aggregating locally and averaging the
  directions is wrong for any non-linear aggregator: see
  :mod:`mtl_course.core.data_parallel`.

Every replica writes its final weights to ``<out>/rank<r>.npz``; the launcher
(``--nproc``) then also trains one process on the same global batches and
prints whether the replicas agree with each other and with it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mtl_course.checks import check_count
from mtl_course.core.data_parallel import ROUNDING, DistributedConfig, global_batches, make_problem, shard
from mtl_course.core.tasks import Task
from mtl_course.torch.aggregators import AGGREGATORS
from mtl_course.torch.gradients import jacobian, unflatten_gradients
from mtl_course.torch.models import HardSharing, mlp
from mtl_course.torch.runtime import seed_everything
from mtl_course.torch.train import resolve_method, task_loss

__all__ = ["build_model", "launch", "load_replicas", "main", "max_difference", "train",
           "weights_of"]

WEIGHTINGS = ("equal",)  # loss weightings whose weights do not depend on the data seen


def build_model(config: DistributedConfig) -> nn.Module:
    """A shared one-hidden-layer trunk and one linear head per task, initialised from ``config.seed``."""
    seed_everything(config.seed)
    trunk = mlp([config.dim, config.hidden], output_activation=True)
    heads = {name: mlp([config.hidden, 1]) for name in ("task1", "task2")}
    return HardSharing(trunk, heads)


def _check_method(method: str) -> None:
    if method not in WEIGHTINGS and method not in AGGREGATORS:
        raise ValueError(
            f"unknown method {method!r}: use one of the weightings {list(WEIGHTINGS)} or the aggregators "
            f"{sorted(AGGREGATORS)} (weightings that learn from the losses, such as 'uncertainty', "
            "'gradnorm' and 'dwa', would also need their own state synchronised: not done here)")


def _all_reduce_mean(buffer: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size > 1:
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        buffer /= world_size
    return buffer


def _aggregated_step(model: HardSharing, losses: list[torch.Tensor],
                     aggregator: Callable[[torch.Tensor], torch.Tensor], world_size: int) -> None:
    """Set ``.grad``: all-reduce the local Jacobian and head gradients in one buffer, then aggregate."""
    shared = model.shared_parameters()
    heads = [p for name in model.task_names for p in model.task_parameters(name)]
    J = jacobian(losses, shared, retain_graph=True)  # (T, P), this replica's shard
    # Each head reaches only its own task's loss, so d(sum of losses)/d(head) is that task's gradient.
    head_grads = torch.autograd.grad(torch.stack(losses).sum(), heads)
    buffer = torch.cat([J.reshape(-1)] + [g.reshape(-1) for g in head_grads])
    buffer = _all_reduce_mean(buffer, world_size)
    J = buffer[:J.numel()].reshape(J.shape)  # the Jacobian of the global-batch losses
    direction = aggregator(J)  # the same on every replica
    for p, g in zip(shared, unflatten_gradients(direction, shared)):
        p.grad = g.detach().clone()
    for p, g in zip(heads, unflatten_gradients(buffer[J.numel():], heads)):
        p.grad = g.detach().clone()


def train(config: DistributedConfig, rank: int = 0, world_size: int = 1,
          device: torch.device | str = "cpu", model: nn.Module | None = None) -> nn.Module:
    """Train :func:`build_model` (or ``model``, built like it) on replica ``rank``'s shards and return it.

    With ``world_size > 1`` the default process group must be initialised
    (``torch.distributed.init_process_group``); with ``world_size == 1`` this
    is ordinary single-process training on the whole global batches, the
    reference the distributed run must match.
    """
    _check_method(config.method)
    if world_size > 1 and not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("world_size > 1 needs torch.distributed.init_process_group() first")
    data = make_problem(config)
    names = data.task_names
    tasks = {name: Task("mse") for name in names}
    method = resolve_method(config.method, tasks, config.seed)
    model = (build_model(config) if model is None else model).to(device)
    x = torch.as_tensor(data.x, device=device)
    ys = {name: torch.as_tensor(data.y[name], device=device) for name in names}
    opt = torch.optim.SGD(model.parameters(), lr=config.lr)
    net: nn.Module = model
    if world_size > 1:
        if config.method in WEIGHTINGS:  # DDP broadcasts rank 0's weights and averages gradients
            net = DistributedDataParallel(model, device_ids=None if torch.device(device).type == "cpu"
                                          else [torch.device(device)])
        else:  # the manual all-reduce below: start every replica from rank 0's weights
            for p in model.parameters():
                dist.broadcast(p.data, src=0)
    for batch in global_batches(len(data), config.global_batch, config.steps, config.seed):
        idx = torch.as_tensor(shard(batch, rank, world_size), device=device)
        outputs = net(x[idx])
        losses = [task_loss(name, tasks[name], outputs[name], ys[name][idx]) for name in names]
        opt.zero_grad(set_to_none=True)
        if config.method in WEIGHTINGS:
            method(dict(zip(names, losses))).backward()
        else:
            _aggregated_step(model, losses, method, world_size)
        opt.step()
    return model


def weights_of(model: nn.Module) -> dict[str, np.ndarray]:
    """The model's parameters as numpy arrays, by name."""
    return {name: p.detach().cpu().numpy().copy() for name, p in model.named_parameters()}


def _backend(world_size: int) -> str:
    """nccl when every process on this machine can have a GPU of its own, else gloo.

    NCCL refuses two ranks on one GPU, and the GPUs a process can use are those
    of its own machine: the count to compare with is the number of processes on
    this machine, ``LOCAL_WORLD_SIZE`` (set by ``torchrun``; the launcher here
    starts every process on one machine, so it defaults to ``world_size``).
    Comparing with ``world_size`` would make a 2-machine, 8-GPU-each run fall
    back to gloo on the CPU.
    """
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    if torch.cuda.is_available() and dist.is_nccl_available() and torch.cuda.device_count() >= local_world_size:
        return "nccl"
    return "gloo"


def _save_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to a temporary file in the same folder, then rename: a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        np.savez(f, **arrays)
    os.replace(partial, path)


def _run_replica(rank: int, world_size: int, config: DistributedConfig, out_dir: str,
                 timeout_s: float, init_method: str = "env://") -> None:
    """One process: join the group, train, save ``rank<r>.npz``, leave the group together with the others.

    ``init_method="env://"`` reads MASTER_ADDR/MASTER_PORT (what ``torchrun`` sets).
    """
    torch.set_num_threads(1)
    backend = _backend(world_size)
    device = torch.device("cpu")
    if backend == "nccl":  # torchrun numbers the processes of one machine with LOCAL_RANK
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=timeout_s))
    try:
        model = train(config, rank, world_size, device)
        _save_atomically(Path(out_dir) / f"rank{rank}.npz", weights_of(model))
        # No replica tears its connections down while another still uses them.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _spawned(rank: int, world_size: int, store_path: str, config: DistributedConfig, out_dir: str,
             timeout_s: float) -> None:
    """A process started by :func:`launch`: one replica, then an immediate exit.

    The rendezvous is a file (``torch.distributed.FileStore``), not a TCP
    store: no port to race for and no store-server thread in rank 0. After the
    replica has saved its weights and left the process group, the process ends
    with ``os._exit(0)``: the C++ libraries' static destructors never run, and
    with them goes the intermittent ``terminate called without an active
    exception`` (SIGABRT) that a background thread can raise while the
    interpreter shuts down. An error during training still raises, and
    :func:`launch` reports it.
    """
    os.environ["LOCAL_RANK"] = str(rank)  # every process of this launcher is on this machine
    os.environ["LOCAL_WORLD_SIZE"] = str(world_size)
    _run_replica(rank, world_size, config, out_dir, timeout_s, init_method=f"file://{store_path}")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def load_replicas(out_dir: str | Path, world_size: int) -> list[dict[str, np.ndarray]]:
    """The weights the replicas saved (``np.load`` without pickle)."""
    replicas = []
    for rank in range(world_size):
        with np.load(Path(out_dir) / f"rank{rank}.npz", allow_pickle=False) as f:
            replicas.append({k: f[k] for k in f.files})
    return replicas


def launch(config: DistributedConfig, nproc: int = 2, out_dir: str | Path | None = None,
           timeout_s: float = 60.0) -> list[dict[str, np.ndarray]]:
    """Train with ``nproc`` processes on 127.0.0.1 and return each replica's final weights.

    The processes are started with ``torch.multiprocessing.start_processes``
    ("spawn") and meet through a file in a temporary folder; a collective that
    waits longer than ``timeout_s`` seconds raises in every process instead of
    hanging. A replica that dies (a signal, an exit without a Python error)
    raises a ``RuntimeError`` naming it; a Python error in a replica raises
    ``torch.multiprocessing.ProcessRaisedException`` with its traceback.
    """
    _check_method(config.method)
    check_count(nproc, "nproc")
    shard(np.arange(config.global_batch), 0, nproc)  # raises if the batch does not split evenly
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as rendezvous:
        target = str(out_dir if out_dir is not None else tmp)
        Path(target).mkdir(parents=True, exist_ok=True)
        store = str(Path(rendezvous) / "store")
        try:
            mp.start_processes(_spawned, args=(nproc, store, config, target, timeout_s),
                               nprocs=nproc, join=True, start_method="spawn")
        except mp.ProcessExitedException as error:  # killed by a signal or exited without a Python error
            how = f"signal {error.signal_name}" if error.signal_name else f"exit code {error.exit_code}"
            raise RuntimeError(f"replica {error.error_index} of {nproc} ended with {how} before finishing; "
                               "the other replicas were stopped") from None
        return load_replicas(target, nproc)


def max_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """The largest absolute difference between two sets of weights with the same names."""
    if a.keys() != b.keys():
        raise ValueError(f"different parameter names: {sorted(a)} vs {sorted(b)}")
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = DistributedConfig()
    parser = argparse.ArgumentParser(prog="python -m mtl_course.torch.distributed_train",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2,
                        help="processes to spawn (ignored under torchrun, which sets them)")
    parser.add_argument("--method", default=defaults.method, help="'equal' or an aggregator name")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--global-batch", type=int, default=defaults.global_batch)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", default=None, help="folder for rank<r>.npz (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a stuck collective fails")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: spawn ``--nproc`` replicas, or be one replica under ``torchrun``."""
    args = _parse(argv)
    config = DistributedConfig(method=args.method, steps=args.steps, global_batch=args.global_batch,
                               lr=args.lr, seed=args.seed)
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        with tempfile.TemporaryDirectory() as tmp:
            _run_replica(rank, world_size, config, args.out or tmp, args.timeout)
        if rank == 0:
            print(f"rank 0 of {world_size}: trained {config.steps} steps with {config.method!r}")
        return 0
    torch.set_num_threads(1)
    try:
        replicas = launch(config, args.nproc, args.out, args.timeout)
    except (RuntimeError, mp.ProcessRaisedException) as error:
        print(f"distributed training failed: {error}", file=sys.stderr)
        return 1
    single = weights_of(train(config))
    between = max(max_difference(replicas[0], r) for r in replicas)
    to_single = max(max_difference(r, single) for r in replicas)
    print(f"{args.nproc} replicas, method {config.method!r}, {config.steps} steps, "
          f"global batch {config.global_batch} ({config.global_batch // args.nproc} per replica)")
    print(f"replicas identical: {between == 0.0}")
    print(f"replicas match the single process to float32 rounding (max difference < {ROUNDING:.0e}): "
          f"{to_single < ROUNDING}")
    return 0


if __name__ == "__main__":
    code = main()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # a torchrun replica: leave like a spawned one
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
