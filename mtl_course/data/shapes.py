"""Generated images for dense prediction: shapes on a background, with a
per-pixel segmentation map and a per-pixel depth map (numpy only).

Each image is a scene seen by a camera. The background is a ground plane whose
distance to the camera grows from the bottom row to the top row. On it stand
one to ``max_shapes`` flat shapes (a disc, a square or a triangle), each facing
the camera at its own distance ``d``. A shape's apparent size follows
perspective, ``radius = focal / d`` pixels, so nearer shapes look larger; this
is the cue a network can read depth from. Shapes are painted far to near, so a
nearer shape hides a farther one (occlusion is consistent with depth). The
brightness of every shape is random and Gaussian noise is added, so neither
task can be solved from the grey level of a single pixel.

Layout: inputs ``x`` are float32 ``(n, 1, H, W)`` (channels first, as PyTorch
convolutions expect; the Keras twin of the chapter's model transposes to
channels last inside the model). Targets: ``"segmentation"`` int64
``(n, H, W)`` with classes :data:`CLASSES` (0 is the background) and
``"depth"`` float32 ``(n, H, W)``, the distance to the camera of what each pixel shows.
"""

from __future__ import annotations

import numpy as np

from mtl_course.checks import check_count, check_nonnegative
from mtl_course.data.types import MultiTaskSplit, Splits

__all__ = ["CLASSES", "shapes_scenes"]

CLASSES = ("background", "disc", "square", "triangle")
"""Class index -> name of the segmentation labels."""

_FAR, _NEAR = 4.0, 3.0  # background depth at the top and bottom rows
_SHAPE_DEPTH = (1.2, 2.8)  # range of shape distances, all nearer than the background


def _shape_mask(kind: int, rows: np.ndarray, cols: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    """Boolean mask of a disc (1), square (2) or upward triangle (3) of half-size ``r`` centred at (cy, cx)."""
    dy, dx = rows - cy, cols - cx
    if kind == 1:
        return dy**2 + dx**2 <= r**2
    if kind == 2:
        half = 0.85 * r  # a square of about the disc's area
        return (np.abs(dy) <= half) & (np.abs(dx) <= half)
    # Triangle with apex at the top (dy = -r) and base at dy = +r: |dx| <= (dy + r) / 2.
    return (dy <= r) & (np.abs(dx) <= (dy + r) / 2)


def _scene(rng: np.random.Generator, size: int, max_shapes: int, focal: float, noise: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    depth = _FAR - (_FAR - _NEAR) * rows / (size - 1)
    image = rng.uniform(0.0, 0.3) + 0.1 * rng.standard_normal((size, size)).cumsum(axis=1) / np.sqrt(size)
    labels = np.zeros((size, size), dtype=np.int64)
    count = rng.integers(1, max_shapes + 1)
    distances = np.sort(rng.uniform(*_SHAPE_DEPTH, size=count))[::-1]  # far to near
    for d in distances:
        kind = int(rng.integers(1, len(CLASSES)))
        r = focal / d
        cy, cx = rng.uniform(r, size - 1 - r, size=2)
        mask = _shape_mask(kind, rows, cols, cy, cx, r)
        image[mask] = rng.uniform(0.5, 1.0)
        labels[mask] = kind
        depth[mask] = d
    image = image + noise * rng.standard_normal((size, size))
    return image.astype(np.float32), labels, depth.astype(np.float32)


def shapes_scenes(n_train: int = 600, n_val: int = 100, n_test: int = 200, size: int = 32,
                  max_shapes: int = 3, focal: float | None = None, noise: float = 0.05, seed: int = 0) -> Splits:
    """Scenes of shapes with segmentation and depth targets (see the module docstring).

    Args:
        n_train, n_val, n_test: number of images per split (each >= 1).
        size: image height and width in pixels (>= 16).
        max_shapes: each image has 1 to ``max_shapes`` shapes.
        focal: apparent radius, in pixels, of a shape at distance 1;
            default ``size / 4`` (so radii range from about ``size/11`` to ``size/5``).
        noise: standard deviation of the Gaussian pixel noise (>= 0).
        seed: the same seed gives bit-identical arrays.

    Returns:
        :class:`~mtl_course.data.Splits` whose ``x`` is float32 ``(n, 1, size, size)`` and
        ``y = {"segmentation": int64 (n, size, size), "depth": float32 (n, size, size)}``.
    """
    counts = [check_count(n, name) for n, name in ((n_train, "n_train"), (n_val, "n_val"), (n_test, "n_test"))]
    size = check_count(size, "size", 16)
    max_shapes = check_count(max_shapes, "max_shapes")
    focal = size / 4 if focal is None else float(focal)
    if not np.isfinite(focal) or focal <= 0 or 2 * focal / _SHAPE_DEPTH[0] >= size - 1:
        raise ValueError(f"focal must be positive and small enough for a shape to fit the image, got {focal}")
    noise = check_nonnegative(noise, "noise")
    rng = np.random.default_rng(seed)
    scenes = [_scene(rng, size, max_shapes, focal, float(noise)) for _ in range(sum(counts))]
    x = np.stack([s[0] for s in scenes])[:, None]
    seg = np.stack([s[1] for s in scenes])
    depth = np.stack([s[2] for s in scenes])
    edges = np.cumsum([0, *counts])
    parts = [MultiTaskSplit(x[a:b], {"segmentation": seg[a:b], "depth": depth[a:b]})
             for a, b in zip(edges[:-1], edges[1:])]
    return Splits(*parts)
