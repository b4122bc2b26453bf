r"""A family of related tasks: sine-wave regression with a random amplitude and phase (chapter 11).

Each task of the family is :math:`y = A \sin(x - \varphi)` on :math:`x \in [-5, 5]`,
with the amplitude :math:`A \sim U[0.1, 5]` and the phase
:math:`\varphi \sim U[0, \pi]` drawn once per task. This is the few-shot
regression family of Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning
for Fast Adaptation of Deep Networks" (ICML 2017), also used by Nichol,
Achiam and Schulman, "On First-Order Meta-Learning Algorithms" (arXiv 2018).
The tasks share a structure (every one is a shifted, scaled sine) but no two
share a target, and a new task is known from a few ``(x, y)`` examples.

Everything here is numpy: the same arrays feed the PyTorch and the
TensorFlow code, and every draw comes from a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtl_course.checks import as_generator, check_count, check_nonnegative
from mtl_course.data.types import MultiTaskSplit

__all__ = ["SineFamily", "SineTask"]


@dataclass(frozen=True)
class SineTask:
    """One task of the family, :math:`y = A \\sin(x - \\varphi)`."""

    amplitude: float
    phase: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The noiseless target at ``x`` (any shape), as float32."""
        return (self.amplitude * np.sin(np.asarray(x, dtype=np.float64) - self.phase)).astype(np.float32)


@dataclass(frozen=True)
class SineFamily:
    """The sine-wave task family: draw tasks, and draw examples of a task.

    Args:
        amplitude: the range ``(low, high)`` of :math:`A` (Finn et al.: ``(0.1, 5.0)``).
        phase: the range of :math:`\\varphi` (Finn et al.: ``(0, pi)``).
        x_range: the input interval (Finn et al.: ``(-5, 5)``).
        noise: the standard deviation of Gaussian noise added to sampled targets.
    """

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, float(np.pi))
    x_range: tuple[float, float] = (-5.0, 5.0)
    noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("amplitude", "phase", "x_range"):
            low, high = getattr(self, name)
            if not (np.isfinite(low) and np.isfinite(high) and low <= high):
                raise ValueError(f"{name} must be a finite range (low, high) with low <= high, "
                                 f"got {getattr(self, name)!r}")
        check_nonnegative(self.noise, "noise")

    def sample_tasks(self, n_tasks: int, rng: np.random.Generator | int | None = None) -> list[SineTask]:
        """``n_tasks`` tasks with independent uniform amplitudes and phases."""
        n_tasks, rng = check_count(n_tasks, "n_tasks"), as_generator(rng, "rng")
        amplitudes = rng.uniform(*self.amplitude, size=n_tasks)
        phases = rng.uniform(*self.phase, size=n_tasks)
        return [SineTask(float(a), float(p)) for a, p in zip(amplitudes, phases)]

    def sample_x(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` inputs drawn uniformly from ``x_range``, shape ``(n, 1)``, float32."""
        n, rng = check_count(n, "n"), as_generator(rng, "rng")
        return rng.uniform(*self.x_range, size=(n, 1)).astype(np.float32)

    def grid(self, n: int = 100) -> np.ndarray:
        """``n`` evenly spaced inputs over ``x_range``, shape ``(n, 1)``, float32 (for test error and plots)."""
        return np.linspace(*self.x_range, check_count(n, "n", 2), dtype=np.float32)[:, None]

    def sample(self, task: SineTask, n: int, rng: np.random.Generator | int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` examples ``(x, y)`` of ``task``, both of shape ``(n, 1)``; ``y`` carries the family's noise."""
        rng = as_generator(rng, "rng")
        x = self.sample_x(n, rng)
        y = task(x)
        if self.noise > 0:
            y = (y + self.noise * rng.standard_normal(y.shape)).astype(np.float32)
        return x, y

    def multitask_split(self, tasks: list[SineTask], n: int, rng: np.random.Generator | int | None = None
                        ) -> MultiTaskSplit:
        """A :class:`~mtl_course.data.types.MultiTaskSplit` of ``n`` shared inputs, one target per task.

        Task ``i`` is named ``"task_i"`` (zero-padded when there are ten or
        more), so the split trains a multi-task model with one head per task.
        """
        if not tasks:
            raise ValueError("tasks is empty: a multi-task split needs at least one task")
        rng = as_generator(rng, "rng")
        x = self.sample_x(n, rng)
        width = len(str(len(tasks) - 1))
        ys = {}
        for i, task in enumerate(tasks):
            y = task(x)
            if self.noise > 0:
                y = (y + self.noise * rng.standard_normal(y.shape)).astype(np.float32)
            ys[f"task_{i:0{width}d}"] = y
        return MultiTaskSplit(x, ys)
