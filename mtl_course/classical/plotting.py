"""Figures of chapter 3: matrices as heat maps and learning curves (matplotlib only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def heatmaps(
    matrices: Mapping[str, np.ndarray],
    *,
    xlabel: str = "feature",
    ylabel: str = "task",
    colorbar_label: str = "",
    vmax: float | None = None,
    panel_size: tuple[float, float] = (3.2, 2.6),
) -> Figure:
    """One heat map per matrix, side by side, on one symmetric color scale (red > 0, blue < 0).

    Used for coefficient matrices (tasks x features) and task correlation matrices.
    """
    if not matrices:
        raise ValueError("heatmaps needs at least one matrix")
    arrays = {title: np.asarray(m, dtype=np.float64) for title, m in matrices.items()}
    if vmax is None:
        vmax = max(float(np.max(np.abs(a))) for a in arrays.values()) or 1.0
    fig, axes = plt.subplots(
        1, len(arrays), figsize=(panel_size[0] * len(arrays), panel_size[1]), squeeze=False, constrained_layout=True
    )
    for ax, (title, array) in zip(axes[0], arrays.items()):
        image = ax.imshow(array, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    fig.colorbar(image, ax=axes[0].tolist(), label=colorbar_label, shrink=0.9)
    return fig


def learning_curve_grid(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    sample_sizes: Sequence[int],
    *,
    ncols: int = 2,
    ylabel: str = "test MSE (mean over tasks)",
    spread: float = 0.12,
) -> Figure:
    """One panel per data set: mean (over seeds) test error of every method against samples per task, log-log.

    ``curves[data set][method]`` is an array ``(len(sample_sizes), n_seeds)``, as
    returned by :func:`mtl_course.classical.comparison.learning_curves`. Each
    point carries an error bar from the smallest to the largest error over the
    seeds; the methods are shifted slightly along the x axis (by a factor of at
    most ``1 +- spread / 2``) so that their bars do not hide each other. Baselines
    (names containing "ridge") are drawn dashed.
    """
    if not curves:
        raise ValueError("learning_curve_grid needs at least one data set")
    nrows = -(-len(curves) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.4 * nrows), squeeze=False, constrained_layout=True)
    sizes = np.asarray(sample_sizes, dtype=np.float64)
    for ax, (title, methods) in zip(axes.flat, curves.items()):
        shifts = np.linspace(-spread / 2, spread / 2, len(methods)) if len(methods) > 1 else [0.0]
        for shift, (name, errors) in zip(shifts, methods.items()):
            errors = np.asarray(errors, dtype=np.float64)
            mean = errors.mean(axis=1)
            bars = np.stack([mean - errors.min(axis=1), errors.max(axis=1) - mean])
            style = "--" if "ridge" in name else "-"
            ax.errorbar(sizes * (1 + shift), mean, yerr=bars, fmt=style, marker="o", markersize=3, capsize=2,
                        elinewidth=0.8, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(list(sample_sizes), [str(n) for n in sample_sizes])
        ax.minorticks_off()
        ax.set_title(title)
        ax.set_xlabel("training samples per task")
        ax.set_ylabel(ylabel)
    for ax in list(axes.flat)[len(curves):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    return fig
