r"""Framework-free parts of meta-learning shared by :mod:`mtl_course.torch.meta` and :mod:`mtl_course.tf.meta`.

Reptile (Nichol, Achiam and Schulman, "On First-Order Meta-Learning
Algorithms", arXiv 2018) updates an initialisation :math:`\theta` from a batch
of :math:`n` tasks by running :math:`k` steps of SGD on each task from
:math:`\theta`, which gives adapted weights :math:`\phi_i`, and moving towards
their mean:

.. math::

   \theta \leftarrow \theta + \varepsilon \, \frac{1}{n} \sum_{i=1}^{n} (\phi_i - \theta).

This module checks the arguments and the examples both twins receive, and
computes that update on numpy arrays (:func:`reptile_update`), the reference
the tests compare the twins with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tqdm

from mtl_course.checks import check_count, check_rate

__all__ = ["check_examples", "check_reptile_arguments", "reptile_loop", "reptile_update"]


def check_examples(x: object, y: object, float64: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The examples of one task as arrays of shape ``(n, d_in)`` and ``(n, d_out)``.

    They are float32, or float64 with ``float64=True`` (both twins pass it for a
    float64 model, so its examples keep their full precision instead of going
    through float32). Raises ``ValueError`` for other ranks, a row-count mismatch,
    no rows, or NaN/inf values. A 1-D ``y`` is refused rather than reshaped:
    broadcasting it against an ``(n, 1)`` prediction would silently compare every pair.

    Examples:
        >>> import numpy as np
        >>> x, y = check_examples(np.zeros((4, 1)), np.ones((4, 1)))
        >>> x.dtype, x.shape, y.shape
        (dtype('float32'), (4, 1), (4, 1))
        >>> check_examples(np.zeros((4, 1)), np.ones(4))
        Traceback (most recent call last):
            ...
        ValueError: x and y must be 2-D (n, features), got shapes (4, 1) and (4,)
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"x and y must be 2-D (n, features), got shapes {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
    if x.shape[0] == 0:
        raise ValueError("no examples: x and y have 0 rows")
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise TypeError(f"x and y must be numeric, got {x.dtype} and {y.dtype}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x or y contains NaN or inf")
    dtype = np.float64 if float64 else np.float32
    return x.astype(dtype), y.astype(dtype)


def check_reptile_arguments(tasks: Sequence[Any], inner_steps: int, inner_lr: float,
                            outer_lr: float) -> tuple[int, float, float]:
    """Both twins' ``reptile_step`` checks: at least one task, ``inner_steps >= 1`` and
    positive finite rates; returns ``(inner_steps, inner_lr, outer_lr)`` as checked.

    Examples:
        >>> check_reptile_arguments([None], 5, 0.02, 0.1)
        (5, 0.02, 0.1)
    """
    if len(tasks) == 0:
        raise ValueError("tasks is empty: a Reptile step needs at least one task")
    return (check_count(inner_steps, "inner_steps"), check_rate(inner_lr, "inner_lr"),
            check_rate(outer_lr, "outer_lr"))


def reptile_update(theta: Sequence[np.ndarray], adapted: Sequence[Sequence[np.ndarray]],
                   outer_lr: float) -> list[np.ndarray]:
    r"""Reptile's outer update :math:`\theta + \varepsilon \frac{1}{n}\sum_i (\phi_i - \theta)` on numpy arrays.

    Args:
        theta: the initialisation, one array per parameter.
        adapted: for each of the ``n`` tasks, its adapted weights :math:`\phi_i`
            (same shapes as ``theta``).
        outer_lr: the outer step size :math:`\varepsilon` (1 moves to the mean of the :math:`\phi_i`).

    Examples:
        >>> import numpy as np
        >>> theta = [np.zeros(2)]
        >>> adapted = [[np.array([1.0, 0.0])], [np.array([0.0, 1.0])]]  # two tasks
        >>> reptile_update(theta, adapted, outer_lr=0.5)
        [array([0.25, 0.25])]
    """
    outer_lr = check_rate(outer_lr, "outer_lr")
    if not adapted:
        raise ValueError("adapted is empty: the update needs the weights adapted to at least one task")
    theta = [np.asarray(t, dtype=np.float64) for t in theta]
    for i, phi in enumerate(adapted):
        if len(phi) != len(theta) or any(np.shape(p) != t.shape for p, t in zip(phi, theta)):
            raise ValueError(f"adapted weights {i} do not have the shapes of theta")
    return [t + outer_lr * np.mean([np.asarray(phi[j], dtype=np.float64) - t for phi in adapted], axis=0)
            for j, t in enumerate(theta)]


def reptile_loop(step: Callable[[list[Any]], float], sample_task: Callable[[np.random.Generator], Any],
                 meta_steps: int, meta_batch_size: int = 1, seed: int = 0, progress: bool = True) -> np.ndarray:
    """Both twins' ``reptile``: ``meta_steps`` calls of ``step`` on batches of tasks; their losses.

    ``sample_task(rng)`` draws one task's examples from a numpy Generator
    seeded with ``seed``; ``step(batch)`` is the twin's ``reptile_step`` on a
    list of ``meta_batch_size`` of them, returning the pre-adaptation loss.

    Examples:
        >>> reptile_loop(lambda batch: float(sum(batch)), lambda rng: 1, meta_steps=3, meta_batch_size=2,
        ...              progress=False)
        array([2., 2., 2.])
    """
    meta_steps = check_count(meta_steps, "meta_steps", 0)
    meta_batch_size = check_count(meta_batch_size, "meta_batch_size")
    rng = np.random.default_rng(seed)
    kwargs = {} if progress else {"disable": True}
    losses = np.empty(meta_steps)
    for index in tqdm.tqdm(range(meta_steps), desc="reptile", unit="step", **kwargs):
        losses[index] = step([sample_task(rng) for _ in range(meta_batch_size)])
    return losses
