r"""Lookahead inter-task affinity measured while training, in TensorFlow (chapter 10).

Twin of :mod:`mtl_course.torch.affinity`: the same arguments, the same
:class:`~mtl_course.core.affinity.AffinityTrace` (Fifty, Amid, Zhao, Yu, Anil
and Finn, "Efficiently Identifying Task Groupings for Multi-Task Learning",
NeurIPS 2021).
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from mtl_course.core import tasks as core_tasks
from mtl_course.core.affinity import AffinityTrace, check_affinity_arguments, lookahead_affinity
from mtl_course.core.tasks import Task
from mtl_course.tf import _environment  # noqa: F401  (must run before tensorflow)
from mtl_course.tf.train import Data, task_loss

__all__ = ["task_affinity"]


def task_affinity(model: keras.Model, data: Data, tasks: Mapping[str, Task | str], epochs: int = 1,
                  batch_size: int = 64, lr: float = 0.05, every: int = 1, seed: int = 0) -> AffinityTrace:
    r"""Train ``model`` and record the lookahead inter-task affinity; see
    :func:`mtl_course.torch.affinity.task_affinity` for the method and every argument.

    The lookahead step assigns :math:`\theta_s - \eta \nabla_{\theta_s} L_i` to the
    shared variables, evaluates every task's loss, and restores them.

    Examples:
        >>> import numpy as np
        >>> import keras
        >>> from mtl_course import tf as mtl
        >>> keras.utils.set_random_seed(0)
        >>> model = mtl.HardSharing(mtl.mlp((3, 4)), {'a': mtl.mlp((4, 1)), 'b': mtl.mlp((4, 1))})
        >>> x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
        >>> data = (x, {'a': x[:, 0], 'b': x[:, 0] + x[:, 1]})
        >>> trace = task_affinity(model, data, {'a': 'mse', 'b': 'mse'}, batch_size=16)  # 2 steps
        >>> trace.task_names, trace.steps.shape, trace.losses.shape
        (('a', 'b'), (2, 2, 2), (2, 2))
    """
    check_affinity_arguments(epochs, lr, every)
    split = core_tasks.training_split(data)
    specs = core_tasks.resolve_tasks(tasks, split.task_names, getattr(model, "task_names", None))
    names = list(specs)
    x = tf.constant(split.x)
    ys = {k: tf.constant(v) for k, v in core_tasks.cast_targets(split, specs).items()}
    if not model.built:
        model(x[:1])
    shared = list(model.shared_parameters())
    if not shared:
        raise ValueError("the model has no shared parameters: there is no lookahead step to take")
    variables = list(model.trainable_variables)
    optimizer = keras.optimizers.SGD(learning_rate=lr)
    rng = np.random.default_rng(seed)
    steps, losses, step = [], [], 0
    for _ in range(int(epochs)):
        for index in core_tasks.batch_indices(len(split), batch_size, rng):
            idx = tf.constant(index)
            xb = tf.gather(x, idx)
            yb = {n: tf.gather(ys[n], idx) for n in names}
            record = step % every == 0
            with tf.GradientTape(persistent=record) as tape:
                outputs = model(xb, training=True)
                task_losses = [task_loss(n, specs[n], outputs[n], yb[n]) for n in names]
                total = tf.add_n(task_losses)
            before = np.array([float(v) for v in task_losses])
            if not np.all(np.isfinite(before)):
                bad = [n for n, v in zip(names, before) if not np.isfinite(v)]
                raise ValueError(f"loss(es) {bad} are NaN or inf")
            if record:
                start = [tf.identity(v) for v in shared]
                after = np.empty((len(names), len(names)))
                for i, loss in enumerate(task_losses):
                    grads = tape.gradient(loss, shared, unconnected_gradients=tf.UnconnectedGradients.ZERO)
                    for v, v0, g in zip(shared, start, grads):
                        v.assign(v0 - lr * g)
                    out_i = model(xb, training=True)
                    after[i] = [float(task_loss(n, specs[n], out_i[n], yb[n])) for n in names]
                for v, v0 in zip(shared, start):
                    v.assign(v0)
                steps.append(lookahead_affinity(before, after))
                losses.append(before)
            grads = tape.gradient(total, variables)
            del tape
            optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
            step += 1
    return AffinityTrace(tuple(names), np.array(steps), np.array(losses))
