"""Auxiliary tasks and negative transfer on a main task (chapter 10).

A main task is trained alone and together with other tasks in a hard-sharing
network whose trunk ends in a narrow layer of ``width`` units (the shared
representation). :func:`main_task_transfer` reports the main task's test
error in each setting, over several seeds: a companion task *helps* when it
lowers that error (an auxiliary task) and *hurts* when it raises it
(negative transfer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mtl_course.data.types import MultiTaskSplit, Splits
from mtl_course.torch.models import HardSharing, mlp
from mtl_course.torch.runtime import seed_everything
from mtl_course.torch.train import fit, predict

__all__ = ["bottleneck_model", "main_task_transfer"]


def bottleneck_model(task_names: Sequence[str], dim: int, width: int, hidden: int = 32) -> HardSharing:
    """Hard sharing with trunk ``dim -> hidden -> width`` (ReLU, linear output) and a linear head per task.

    With a small ``width`` the tasks compete for the few shared units.
    """
    return HardSharing(mlp([dim, hidden, width]), {name: mlp([width, 1]) for name in task_names})


def main_task_transfer(splits: Splits, main: str, settings: Mapping[str, Sequence[str]], width: int = 1,
                       seeds: Sequence[int] = (0, 1, 2), epochs: int = 60, lr: float = 3e-3,
                       batch_size: int = 32) -> dict[str, np.ndarray]:
    """The main task's test mean squared error when trained with each set of companion tasks.

    Args:
        splits: the data (train is used for training, test for the error).
        main: the main task's name.
        settings: label -> companion task names (an empty list: the main task alone).
        width: the width of the shared representation (see :func:`bottleneck_model`).
        seeds: one run per seed (initialisation and batch order).
        epochs, lr, batch_size: passed to :func:`mtl_course.torch.fit` (Adam, equal weights).

    Returns:
        label -> array of the test errors, one per seed.
    """
    if main not in splits.train.task_names:
        raise ValueError(f"unknown main task {main!r}; the tasks are {splits.train.task_names}")
    if not settings or not seeds:
        raise ValueError("settings and seeds must be non-empty")
    dim = splits.train.x.shape[1]
    results = {}
    for label, companions in settings.items():
        names = [main, *companions]
        unknown = [n for n in names if n not in splits.train.task_names]
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"setting {label!r}: unknown or repeated tasks in {names}")
        train = MultiTaskSplit(splits.train.x, {n: splits.train.y[n] for n in names})
        errors = []
        for seed in seeds:
            seed_everything(int(seed))
            model = bottleneck_model(names, dim, width)
            fit(model, train, {n: "mse" for n in names}, epochs=epochs, lr=lr, batch_size=batch_size,
                seed=int(seed), progress=False)
            prediction = predict(model, splits.test.x)[main].reshape(-1)
            errors.append(float(np.mean((prediction - splits.test.y[main]) ** 2)))
        results[label] = np.array(errors)
    return results
