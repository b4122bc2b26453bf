"""Multi-digit images built from scikit-learn's bundled 8x8 digits (offline).

A small, CPU-friendly cousin of MultiMNIST (Sabour, Frosst and Hinton,
"Dynamic Routing Between Capsules", NeurIPS 2017), the two-digit benchmark
that Sener and Koltun, "Multi-Task Learning as Multi-Objective Optimization",
NeurIPS 2018, use for multi-task learning.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from mtl_course.checks import as_generator, positive_int
from mtl_course.data.types import MultiTaskSplit, Splits

__all__ = ["multi_digits", "POOL_FRACTIONS"]

POOL_FRACTIONS = (0.6, 0.2, 0.2)
"""Shares of the 1797 source digits given to the train, val and test pools."""

_OVERLAP_SHIFT = 4  # columns by which the two digits overlap when overlap=True


def _source_pools(rng: np.random.Generator, num_images: int) -> list[np.ndarray]:
    """Disjoint train / val / test index pools over the source images."""
    order = rng.permutation(num_images)
    n_train = int(POOL_FRACTIONS[0] * num_images)
    n_val = int(POOL_FRACTIONS[1] * num_images)
    return [order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]]


def _compose(
    images: np.ndarray,
    labels: np.ndarray,
    pool: np.ndarray,
    n: int,
    rng: np.random.Generator,
    overlap: bool,
) -> MultiTaskSplit:
    """``n`` pairs whose two halves are drawn, with replacement, from ``pool``."""
    left = rng.choice(pool, size=n)
    right = rng.choice(pool, size=n)
    x = np.zeros((n, 8, 16), dtype=np.float32)
    if overlap:
        start = _OVERLAP_SHIFT // 2
        x[:, :, start : start + 8] = images[left]
        right_cols = slice(start + 8 - _OVERLAP_SHIFT, start + 16 - _OVERLAP_SHIFT)
        x[:, :, right_cols] = np.maximum(x[:, :, right_cols], images[right])
    else:
        x[:, :, :8] = images[left]
        x[:, :, 8:] = images[right]
    y_left, y_right = labels[left], labels[right]
    return MultiTaskSplit(
        x, {"left": y_left, "right": y_right, "parity": (y_left + y_right) % 2}
    )


def multi_digits(
    seed: int = 0,
    n_train: int = 3000,
    n_val: int = 1000,
    n_test: int = 1000,
    overlap: bool = False,
) -> Splits:
    """Pairs of handwritten digits with three tasks: left digit, right digit, parity.

    The 1797 images of :func:`sklearn.datasets.load_digits` (8x8, values 0-16)
    are first split into disjoint train / val / test pools (60 / 20 / 20 %),
    and only then paired, each half drawn uniformly (with replacement) from
    its split's pool: no source image appears in two splits, so test scores
    measure generalization to unseen handwriting.

    Layout: ``overlap=False`` puts the two digits side by side (columns 0-7 and
    8-15); ``overlap=True`` shifts them 4 columns towards each other (columns
    2-9 and 6-13) and keeps the brighter pixel where they overlap, which makes
    the tasks harder, as in MultiMNIST.

    Returns:
        ``Splits`` of ``MultiTaskSplit`` with ``x`` float32 ``(n, 8, 16)`` in
        ``[0, 1]`` and int64 ``(n,)`` tasks ``"left"`` (0-9), ``"right"`` (0-9)
        and ``"parity"`` (``(left + right) % 2``).
    """
    sizes = [
        positive_int(value, name)
        for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test))
    ]
    if not isinstance(overlap, (bool, np.bool_)):
        raise TypeError(f"overlap must be a bool, got {overlap!r}")
    rng = as_generator(positive_int(seed, "seed", 0))
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    pools = _source_pools(rng, len(images))
    return Splits(
        *(_compose(images, labels, pool, n, rng, bool(overlap)) for pool, n in zip(pools, sizes))
    )
