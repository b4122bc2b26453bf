r"""Data-parallel multi-task training with ``tf.distribute.MirroredStrategy``: a script and its pieces.

The TensorFlow side of :mod:`mtl_course.torch.distributed_train`, on the same
problem (:mod:`mtl_course.core.data_parallel`). Without GPUs, the one CPU is
split into logical devices (``tf.config.set_logical_device_configuration``)
and ``MirroredStrategy`` runs one replica on each::

    python -m mtl_course.tf.distributed_train --replicas 2 --method mgda --steps 10

Logical devices must be configured before TensorFlow initialises its runtime,
so run this as its own process (the chapter and the tests do).

Each step, every replica computes on its shard of the global batch the
gradients it needs: for "equal", the gradient of :math:`\sum_t L_t^{(r)}`; for
an aggregator, its local Jacobian :math:`J^{(r)}` of the task losses with
respect to the shared variables and the gradients of the task heads. The
strategy averages them across replicas (``strategy.reduce(MEAN, ...)``, an
all-reduce), the aggregator is applied once to the averaged Jacobian, and the
SGD update is written into the mirrored variables, so every replica holds the
same weights.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from mtl_course.checks import check_count
from mtl_course.core.data_parallel import ROUNDING, DistributedConfig, global_batches, make_problem, shard
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)

__all__ = ["build_model", "main", "mirrors_agree", "split_cpu", "train", "weights_of"]

WEIGHTINGS = ("equal",)


def split_cpu(num_devices: int) -> list[str]:
    """Split the first CPU into ``num_devices`` logical devices and return their names.

    Must run before TensorFlow initialises (before the first op); raises a
    ``RuntimeError`` that says so otherwise.
    """
    check_count(num_devices, "num_devices")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])
    except RuntimeError as error:
        raise RuntimeError("split_cpu must run before TensorFlow is initialised "
                           f"(start a fresh process): {error}") from error
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def build_model(config: DistributedConfig):
    """The Keras twin of :func:`mtl_course.torch.distributed_train.build_model`, initialised from ``config.seed``.

    Build it inside ``strategy.scope()`` so its variables are mirrored.
    """
    from mtl_course.tf.models import HardSharing, mlp
    from mtl_course.tf.runtime import seed_everything

    seed_everything(config.seed)
    trunk = mlp([config.dim, config.hidden], output_activation=True)
    heads = {name: mlp([config.hidden, 1]) for name in ("task1", "task2")}
    model = HardSharing(trunk, heads)
    model(np.zeros((1, config.dim), np.float32))  # create the variables
    return model


def _aggregator(method: str, seed: int):
    from mtl_course.core.tasks import Task
    from mtl_course.tf.aggregators import AGGREGATORS
    from mtl_course.tf.train import resolve_method

    if method not in WEIGHTINGS and method not in AGGREGATORS:
        raise ValueError(f"unknown method {method!r}: use one of the weightings {list(WEIGHTINGS)} "
                         f"or the aggregators {sorted(AGGREGATORS)}")
    if method in WEIGHTINGS:
        return None
    return resolve_method(method, {"task1": Task("mse"), "task2": Task("mse")}, seed)


def train(config: DistributedConfig, strategy: tf.distribute.Strategy | None = None, model=None):
    """Train :func:`build_model` under ``strategy`` (default: one CPU device) and return it.

    ``model``, if given, is built like :func:`build_model` (under ``strategy.scope()``
    when a strategy is given) and trained in place, for example after
    :func:`mtl_course.parity.copy_torch_to_tf` gave it a PyTorch model's weights.

    The global batches are the same for any number of replicas; replica
    ``r`` of ``R`` sees :func:`mtl_course.core.data_parallel.shard` ``(batch, r, R)``.
    """
    aggregator = _aggregator(config.method, config.seed)
    strategy = strategy or tf.distribute.OneDeviceStrategy("/cpu:0")
    replicas = strategy.num_replicas_in_sync
    data = make_problem(config)
    names = data.task_names
    if model is None:
        with strategy.scope():
            model = build_model(config)
    shared = model.shared_parameters()
    heads = [v for name in names for v in model.task_parameters(name)]

    def local_gradients(x, *ys):
        """This replica's gradients: of the summed loss, or the per-task rows of J plus the heads'."""
        with tf.GradientTape(persistent=True) as tape:
            outputs = model(x)
            losses = [tf.reduce_mean(tf.square(tf.reshape(outputs[n], [-1]) - y)) for n, y in zip(names, ys)]
            total = tf.add_n(losses)
        if aggregator is None:
            return tape.gradient(total, shared + heads)
        rows = [tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, shared)], 0) for loss in losses]
        return [tf.stack(rows)] + tape.gradient(total, heads)  # each head reaches only its own loss

    @tf.function
    def averaged_gradients(x, ys):
        per_replica = strategy.run(local_gradients, args=(x, *ys))
        return [strategy.reduce(tf.distribute.ReduceOp.MEAN, g, axis=None) for g in per_replica]

    def distributed(array: np.ndarray, batch: np.ndarray):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(array[shard(batch, ctx.replica_id_in_sync_group, replicas)]))

    for batch in global_batches(len(data), config.global_batch, config.steps, config.seed):
        grads = averaged_gradients(distributed(data.x, batch), [distributed(data.y[n], batch) for n in names])
        if aggregator is not None:
            from mtl_course.tf.gradients import unflatten_gradients

            grads = unflatten_gradients(aggregator(grads[0]), shared) + grads[1:]
        for variable, g in zip(shared + heads, grads):
            variable.assign_sub(config.lr * g)  # cross-replica context: updates every mirror
    return model


def weights_of(model) -> dict[str, np.ndarray]:
    """The model's variables as numpy arrays, keyed by position (Keras numbers the names of a second model)."""
    return {f"{i:02d}": np.array(v.numpy()) for i, v in enumerate(model.trainable_variables)}


def mirrors_agree(model) -> bool:
    """Whether every replica's copy of every variable holds exactly the same values."""
    for variable in model.trainable_variables:
        copies = [np.array(c) for c in getattr(variable.value, "values", (variable.value,))]
        if any(not np.array_equal(copies[0], c) for c in copies[1:]):
            return False
    return True


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = DistributedConfig()
    parser = argparse.ArgumentParser(prog="python -m mtl_course.tf.distributed_train",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2, help="logical CPU devices, one replica each")
    parser.add_argument("--method", default=defaults.method, help="'equal' or an aggregator name")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--global-batch", type=int, default=defaults.global_batch)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", default=None,
                        help="write the mirrored and the single-device weights to this .npz file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Train with ``--replicas`` mirrored replicas and on one device; print how far apart they end."""
    args = _parse(argv)
    config = DistributedConfig(method=args.method, steps=args.steps, global_batch=args.global_batch,
                               lr=args.lr, seed=args.seed)
    devices = split_cpu(args.replicas)
    model = train(config, tf.distribute.MirroredStrategy(devices))
    identical = mirrors_agree(model)
    mirrored = weights_of(model)
    single = weights_of(train(config))
    diff = max(float(np.max(np.abs(mirrored[k] - single[k]))) for k in single)
    print(f"MirroredStrategy on {len(devices)} logical CPUs, method {config.method!r}, {config.steps} steps, "
          f"global batch {config.global_batch}")
    print(f"replicas identical: {identical}")
    print(f"mirrored matches the single device to float32 rounding (max difference < {ROUNDING:.0e}): "
          f"{diff < ROUNDING}")
    if args.out:
        np.savez(Path(args.out), identical=np.array(identical), **{f"mirrored/{k}": v for k, v in mirrored.items()},
                 **{f"single/{k}": v for k, v in single.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
