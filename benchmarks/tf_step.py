"""TensorFlow ``fit`` step vs PyTorch ``fit`` step on the same model and batch.

Models: hard sharing (MLP trunk 32-128-128, one linear head per task) and MMoE
(4 experts 32-64, towers 64-16-1), three regression tasks, batch 64, for equal
weighting, uncertainty weighting, UPGrad and GradNorm (its weight update in the graph
since issue 17; ``--eager`` times the eager step instead, to see what compiling saves). A step's cost is the steady-state
step of ``fit``: for torch ``(fit with 3 epochs - fit with 1 epoch) / (2 x
steps per epoch)``, so that one-off costs cancel; for TensorFlow the step
function ``fit`` calls on each batch, timed after it is traced (the epoch
difference would be swamped by the jitter of tracing, about a second). Rounds
interleave the frameworks; the table gives the best and the median round.
Target: TF <= 1.5x torch.

    python benchmarks/tf_step.py [--rounds 5] [--threads 1] [--methods equal,gradnorm] [--eager]

``--threads`` also sets TensorFlow's intra- and inter-op thread pools.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _threads import parse_threads  # benchmarks/_threads.py (scripts run from benchmarks/)

import mtl_course.tf as mtl_tf  # before tensorflow: quiets its start-up logs
import mtl_course.torch as mtl_torch
from mtl_course.core.weighting import gradnorm_layer_index
from mtl_course.data.types import MultiTaskSplit

TASKS = {f"t{i}": "mse" for i in range(3)}
STEPS_PER_EPOCH = 40
BATCH = 64


def data() -> MultiTaskSplit:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((STEPS_PER_EPOCH * BATCH, 32)).astype(np.float32)
    return MultiTaskSplit(x, {t: (np.tanh(x @ rng.standard_normal(32))).astype(np.float32) for t in TASKS})


def model(mtl, kind: str):
    mtl.seed_everything(0)
    if kind == "hard sharing":
        return mtl.HardSharing(mtl.mlp([32, 128, 128]), {t: mtl.mlp([128, 1]) for t in TASKS})
    return mtl.MMoE(32, 4, (64,), list(TASKS), tower_hidden=(16,))


def torch_step_ms(kind: str, method: str, split: MultiTaskSplit) -> float:
    """``(fit with 3 epochs - fit with 1 epoch) / (2 x steps per epoch)``: one-off costs cancel."""
    seconds = []
    for epochs in (1, 3):
        net = model(mtl_torch, kind)
        start = time.process_time()  # CPU time: not the waits when other jobs hold the cores
        mtl_torch.fit(net, split, TASKS, method=method, epochs=epochs, batch_size=BATCH, progress=False,
                      device="cpu")
        seconds.append(time.process_time() - start)
    return 1e3 * (seconds[1] - seconds[0]) / (2 * STEPS_PER_EPOCH)


def tf_step_ms(kind: str, method: str, split: MultiTaskSplit) -> float:
    """The step ``fit`` calls on each batch (``mtl_course.tf.train._train_step``), timed after its
    traces: the epoch difference of the torch side would be swamped by the jitter of tracing."""
    import tensorflow as tf

    from mtl_course.core import tasks as core_tasks
    from mtl_course.tf import train

    net = model(mtl_tf, kind)
    specs = core_tasks.resolve_tasks(TASKS, split.task_names, net.task_names)
    resolved = train.resolve_method(method, specs, 0)
    opt = train._optimizer(None, 1e-3)
    x = tf.constant(split.x)
    ys = {k: tf.constant(v) for k, v in core_tasks.cast_targets(split, specs).items()}
    net(x[:1])
    variables = list(net.trainable_variables) + list(getattr(resolved, "trainable_variables", []))
    opt.build(variables)
    gradnorm_vars = None
    if method == "gradnorm":  # as fit picks it: the last shared weight matrix
        shared = list(net.shared_parameters())
        gradnorm_vars = [shared[gradnorm_layer_index([tuple(v.shape) for v in shared])]]
    step = train._train_step(net, specs, resolved, opt, variables, gradnorm_vars, set(), None)
    rng = np.random.default_rng(0)
    batches = list(core_tasks.batch_indices(len(split), BATCH, rng))
    present = np.ones(len(TASKS), bool)
    step(x, ys, {}, batches[0], present)  # trace
    start = time.process_time()
    for _ in range(2):
        for index in batches:
            step(x, ys, {}, index, present)
    return 1e3 * (time.process_time() - start) / (2 * STEPS_PER_EPOCH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--methods", default="equal,uncertainty,upgrad,gradnorm",
                        help="comma-separated fit methods")
    parser.add_argument("--eager", action="store_true", help="time TensorFlow's eager step (not compiled)")
    args = parse_threads(__doc__.splitlines()[0], parser)
    import tensorflow as tf
    import torch

    from mtl_course.tf import train

    train._FORCE_EAGER = args.eager
    if args.threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), tensorflow {tf.__version__} "
          f"({args.threads or 'default'} threads, {'eager' if args.eager else 'compiled'}), CPU; process time per step, {args.rounds} interleaved rounds")
    print(f"{'model':<13} {'method':<12} {'torch ms':>9} {'tf ms':>8} {'ratio best':>11} {'ratio median':>13}")
    split = data()
    for kind in ("hard sharing", "MMoE"):
        for method in args.methods.split(","):
            torch_step_ms(kind, method, split)  # warm-up: imports, kernels
            times: dict[str, list[float]] = {"torch": [], "tf": []}
            for _ in range(args.rounds):
                times["torch"].append(torch_step_ms(kind, method, split))
                times["tf"].append(tf_step_ms(kind, method, split))
            # a round whose 3-epoch fit took no more CPU time than its 1-epoch fit measured noise
            # (another thread's work in this process), not a step: it is dropped and counted
            ratios = [b / a for a, b in zip(times["torch"], times["tf"]) if a > 0]
            dropped = args.rounds - len(ratios)
            if not ratios:
                print(f"{kind:<13} {method:<12} no valid round: the torch epoch difference was never positive")
                continue
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"{kind:<13} {method:<12} {med['torch']:>9.3f} {med['tf']:>8.3f} {min(ratios):>11.2f} "
                  f"{statistics.median(ratios):>13.2f}" + (f"  ({dropped} round(s) dropped)" if dropped else ""))


if __name__ == "__main__":
    main()
