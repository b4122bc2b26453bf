r"""Measuring gradient conflict during training (chapter 8).

Two task gradients :math:`g_i, g_j` on the shared parameters *conflict* when
:math:`g_i\cdot g_j < 0`: a small step along their sum then increases one of
the losses. The usual summaries (Yu et al., "Gradient Surgery for Multi-Task
Learning", NeurIPS 2020) are the cosine similarity
:math:`\cos\phi_{ij} = g_i\cdot g_j / (\|g_i\|\|g_j\|)` and the magnitude
ratio :math:`\|g_i\| / \|g_j\|`. Both come from the Gram matrix
:math:`G = J J^\top` of the per-task Jacobian ``J``.

:func:`conflict_during_training` trains a hard-sharing network with equal
weights (Adam on the sum of the task losses) and records, at every step, the
cosine matrix and the gradient norms computed with
:func:`mtl_course.torch.gradients.jacobian`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mtl_course.core.tasks import batch_indices
from mtl_course.data.types import MultiTaskSplit
from mtl_course.torch.gradients import jacobian
from mtl_course.torch.models import HardSharing

__all__ = ["cosine_matrix", "ConflictTrace", "conflict_during_training"]


def cosine_matrix(G: np.ndarray) -> np.ndarray:
    """Cosine similarities of the task gradients from their Gram matrix ``G`` (``T x T``).

    ``C[i, j] = G[i, j] / sqrt(G[i, i] G[j, j])``. A zero gradient has no
    direction: its row and column are NaN-free zeros, with 1 on the diagonal
    only for non-zero gradients.
    """
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] == 0:
        raise ValueError(f"G must be a non-empty square matrix, got shape {G.shape}")
    if not np.all(np.isfinite(G)):
        raise ValueError("G contains NaN or inf")
    norms = np.sqrt(np.clip(np.diag(G), 0.0, None))
    outer = np.outer(norms, norms)
    return np.divide(G, outer, out=np.zeros_like(G), where=outer > 0)


@dataclass(frozen=True)
class ConflictTrace:
    """What :func:`conflict_during_training` records, one entry per optimisation step.

    Attributes:
        task_names: the order of the tasks.
        cosines: ``(steps, T, T)`` cosine matrices.
        norms: ``(steps, T)`` gradient norms on the shared parameters.
        losses: ``(steps, T)`` mini-batch losses.
    """

    task_names: tuple[str, ...]
    cosines: np.ndarray
    norms: np.ndarray
    losses: np.ndarray

    def pair_cosine(self, i: int = 0, j: int = 1) -> np.ndarray:
        """The cosine between tasks ``i`` and ``j`` at every step."""
        return self.cosines[:, i, j]

    def conflict_rate(self, i: int = 0, j: int = 1) -> float:
        """The fraction of steps on which tasks ``i`` and ``j`` conflict (cosine below 0)."""
        return float(np.mean(self.pair_cosine(i, j) < 0.0))


def conflict_during_training(model: HardSharing, data: MultiTaskSplit, epochs: int = 3,
                             batch_size: int = 64, lr: float = 1e-3, seed: int = 0) -> ConflictTrace:
    """Train ``model`` (regression tasks, mean squared error, equal weights, Adam) and
    record the conflict statistics of every mini-batch step.

    The update is the ordinary gradient of the summed losses; the Jacobian on
    ``model.shared_parameters()`` is computed on the side, for measurement only.
    ``seed`` seeds the mini-batch order; the model's initialisation is the caller's.
    Training runs on the device of the model's parameters (move the model
    first, e.g. ``model.to(mtl.device())``); the statistics come back as numpy.
    """
    names = tuple(model.task_names)
    missing = [name for name in names if name not in data.y]
    if missing:
        raise ValueError(f"data has no targets for task(s) {missing}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    device = next(model.parameters()).device  # train where the caller put the model
    x = torch.as_tensor(np.asarray(data.x, dtype=np.float32), device=device)
    ys = {name: torch.as_tensor(np.asarray(data.y[name], dtype=np.float32), device=device) for name in names}
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shared = model.shared_parameters()
    rng = np.random.default_rng(seed)
    cosines, norms, losses = [], [], []
    for _ in range(epochs):
        for index in batch_indices(len(data), batch_size, rng):
            idx = torch.as_tensor(index, device=device)
            outputs = model(x[idx])
            task_losses = [F.mse_loss(outputs[n].reshape(-1), ys[n][idx]) for n in names]
            J = jacobian(task_losses, shared, retain_graph=True).detach().cpu().double()  # MPS has no float64
            G = (J @ J.T).cpu().numpy()
            cosines.append(cosine_matrix(G))
            norms.append(np.sqrt(np.clip(np.diag(G), 0.0, None)))
            losses.append([float(loss.detach()) for loss in task_losses])
            optimizer.zero_grad(set_to_none=True)
            torch.stack(task_losses).sum().backward()
            optimizer.step()
    return ConflictTrace(names, np.array(cosines), np.array(norms), np.array(losses))
