r"""Meta-learning in PyTorch: Reptile and few-shot adaptation (chapter 11).

:func:`reptile_step` is one outer update of Reptile (Nichol, Achiam and
Schulman, "On First-Order Meta-Learning Algorithms", arXiv 2018, Algorithm 2
with plain SGD inside): from the current weights :math:`\theta`, each task
:math:`i` of a batch of :math:`n` gets :math:`k` steps of full-batch SGD on its
mean squared error, :math:`\phi_i = U^k_i(\theta)`, and then

.. math::

   \theta \leftarrow \theta + \varepsilon \, \frac{1}{n} \sum_{i=1}^{n} (\phi_i - \theta).

:func:`reptile` repeats it on tasks drawn from a family; :func:`adapt`
fine-tunes a copy of a model on a few examples of one task with the same SGD
steps, which is how an initialisation (meta-learned, pretrained or random) is
used on a new task. The TensorFlow twin is :mod:`mtl_course.tf.meta`.

The models are single-task regressors: a module mapping ``(n, d_in)`` to
``(n, d_out)``, such as :func:`mtl_course.torch.models.mlp`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mtl_course.checks import check_count, check_rate
from mtl_course.core import meta as core_meta
from mtl_course.core.meta import check_examples

__all__ = ["adapt", "reptile", "reptile_step"]

Examples = tuple[np.ndarray, np.ndarray]


def _tensors(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The checked examples on the model's device, in the model's floating dtype (float32 or float64)."""
    param = next(iter(model.parameters()))
    checked = check_examples(x, y, float64=param.dtype == torch.float64)
    return tuple(torch.as_tensor(a, device=param.device) for a in checked)


def _mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    prediction = model(x)
    if prediction.shape != y.shape:
        raise ValueError(f"the model predicts shape {tuple(prediction.shape)} but y has shape {tuple(y.shape)}")
    return F.mse_loss(prediction, y)


def _sgd(model: nn.Module, params: list[nn.Parameter], x: torch.Tensor, y: torch.Tensor,
         steps: int, lr: float) -> float:
    """``steps`` full-batch SGD steps on the MSE, in place; returns the loss before the first step."""
    first = math.nan
    for step in range(steps):
        with torch.enable_grad():  # also inside a caller's torch.no_grad()
            loss = _mse(model, x, y)
        value = loss.item()
        if not math.isfinite(value):
            raise ValueError(f"the loss became {value} at SGD step {step}: lower the learning rate")
        first = value if step == 0 else first
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * g)
    return first


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    return params


def reptile_step(model: nn.Module, tasks: Sequence[Examples], inner_steps: int = 5, inner_lr: float = 0.02,
                 outer_lr: float = 0.1) -> float:
    r"""One Reptile outer update of ``model``'s weights, in place, from a batch of tasks.

    Args:
        model: maps ``(n, d_in)`` to ``(n, d_out)``.
        tasks: the batch, one ``(x, y)`` pair of numpy arrays per task
            (shapes ``(n_i, d_in)`` and ``(n_i, d_out)``).
        inner_steps: :math:`k \ge 1`, full-batch SGD steps on each task's MSE.
        inner_lr: the SGD step size :math:`\alpha`.
        outer_lr: :math:`\varepsilon`; 1 sets :math:`\theta` to the mean of the :math:`\phi_i`.

    Returns:
        The tasks' mean MSE at :math:`\theta`, before adaptation.

    Examples:
        >>> import numpy as np
        >>> import torch
        >>> from mtl_course import torch as mtl
        >>> _ = torch.manual_seed(0)
        >>> model = mtl.mlp((1, 8, 1))
        >>> x = np.linspace(-1, 1, 10).reshape(-1, 1)
        >>> before = [p.detach().clone() for p in model.parameters()]
        >>> loss = reptile_step(model, [(x, 2 * x), (x, -x)], inner_steps=3)
        >>> isinstance(loss, float), any(not torch.equal(p, q) for p, q in zip(before, model.parameters()))
        (True, True)
    """
    inner_steps, inner_lr, outer_lr = core_meta.check_reptile_arguments(tasks, inner_steps, inner_lr, outer_lr)
    params = _trainable(model)
    data = [_tensors(model, x, y) for x, y in tasks]
    theta = [p.detach().clone() for p in params]
    delta = [torch.zeros_like(p) for p in params]
    losses = []
    try:
        for x, y in data:
            losses.append(_sgd(model, params, x, y, inner_steps, inner_lr))
            with torch.no_grad():
                for d, p, t in zip(delta, params, theta):
                    d.add_(p - t)
                    p.copy_(t)
    except Exception:
        with torch.no_grad():  # leave the model as it was
            for p, t in zip(params, theta):
                p.copy_(t)
        raise
    with torch.no_grad():
        for p, t, d in zip(params, theta, delta):
            p.copy_(t + outer_lr * (d / len(data)))
    return float(np.mean(losses))


def reptile(model: nn.Module, sample_task: Callable[[np.random.Generator], Examples], meta_steps: int,
            meta_batch_size: int = 1, inner_steps: int = 5, inner_lr: float = 0.02, outer_lr: float = 0.1,
            seed: int = 0, progress: bool = True) -> np.ndarray:
    r"""Meta-train ``model`` with Reptile: ``meta_steps`` calls of :func:`reptile_step`.

    Args:
        sample_task: called with a numpy Generator (seeded with ``seed``),
            returns one new task's examples ``(x, y)``; for example
            ``lambda rng: family.sample(family.sample_tasks(1, rng)[0], 10, rng)``
            with a :class:`~mtl_course.data.families.SineFamily`.
        meta_batch_size: tasks per outer update, :math:`n`.
        progress: a ``tqdm.tqdm`` bar (also silenced by ``TQDM_DISABLE=1``).

    The other arguments are those of :func:`reptile_step`, with a constant
    :math:`\varepsilon` (Nichol et al. anneal it linearly to 0; a constant one
    is simpler and enough here). Returns the pre-adaptation loss of every step.

    Examples:
        >>> import numpy as np
        >>> import torch
        >>> from mtl_course import torch as mtl
        >>> _ = torch.manual_seed(0)
        >>> model = mtl.mlp((1, 8, 1))
        >>> def sample_task(rng):
        ...     x = rng.uniform(-1, 1, size=(10, 1))
        ...     return x, rng.uniform(0.5, 2) * x
        >>> losses = reptile(model, sample_task, meta_steps=4, progress=False)
        >>> losses.shape
        (4,)
    """
    return core_meta.reptile_loop(lambda batch: reptile_step(model, batch, inner_steps, inner_lr, outer_lr),
                                  sample_task, meta_steps, meta_batch_size, seed, progress)


def adapt(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int = 32, lr: float = 0.02) -> nn.Module:
    """A copy of ``model`` fine-tuned on one task's examples by ``steps`` full-batch SGD steps on the MSE.

    ``model`` itself is not changed. ``steps=0`` returns an unchanged copy
    (the initialisation's zero-shot prediction).

    Examples:
        >>> import numpy as np
        >>> import torch
        >>> from mtl_course import torch as mtl
        >>> _ = torch.manual_seed(0)
        >>> model = mtl.mlp((1, 8, 1))
        >>> x = np.linspace(-1, 1, 10).reshape(-1, 1)
        >>> y = 2 * x
        >>> tuned = adapt(model, x, y, steps=50, lr=0.1)
        >>> mse = lambda m: float(((m(torch.as_tensor(x, dtype=torch.float32)).detach().numpy() - y) ** 2).mean())
        >>> mse(tuned) < mse(model)  # model itself is unchanged
        True
    """
    steps = check_count(steps, "steps", 0)
    lr = check_rate(lr, "lr")
    adapted = copy.deepcopy(model)
    x_t, y_t = _tensors(adapted, x, y)
    if steps:
        _sgd(adapted, _trainable(adapted), x_t, y_t, steps, lr)
    return adapted
