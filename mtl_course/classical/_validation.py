"""Input checks shared by every estimator in :mod:`mtl_course.classical`.

A multi-task data set is given as two lists of the same length ``T``: one input
matrix ``X_t`` of shape ``(n_t, d)`` and one target vector ``y_t`` of shape
``(n_t,)`` per task. Tasks may have different sample counts ``n_t`` but must share
the feature count ``d``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayList = list[np.ndarray]


def _as_list(value: object, name: str) -> list:
    if isinstance(value, np.ndarray) or not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(
            f"{name} must be a list with one array per task, got {type(value).__name__}"
        )
    if len(value) == 0:
        raise ValueError(f"{name} is empty: at least one task is needed")
    return list(value)


def _as_finite_float(array: object, what: str) -> np.ndarray:
    try:
        out = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{what} must be numeric: {error}") from None
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what} contains NaN or inf")
    return out


def _check_magnitude(array: np.ndarray, what: str) -> None:
    """Reject entries so large that sums of squares (X^T X, ||y||^2) overflow float64."""
    largest = float(np.max(np.abs(array))) if array.size else 0.0
    if largest > np.sqrt(np.finfo(np.float64).max / max(array.size, 1)):
        raise ValueError(
            f"{what} is too large (largest |entry| {largest:.3g}): its sums of squares overflow "
            "float64; rescale it (e.g. standardize the features)"
        )


def check_X_list(X_list: Sequence[np.ndarray], n_features: int | None = None) -> ArrayList:
    """Validate the per-task inputs and return them as float64 arrays.

    Raises:
        TypeError: ``X_list`` is not a list, or an entry is not numeric.
        ValueError: no tasks, a task without rows, an input that is not 2-D,
            tasks with different feature counts (or a count different from
            ``n_features``), NaN / inf values, or values so large that
            ``X^T X`` overflows float64.
    """
    X_list = _as_list(X_list, "X_list")
    out = []
    for t, X in enumerate(X_list):
        X = _as_finite_float(X, f"X_list[{t}]")
        _check_magnitude(X, f"X_list[{t}]")
        if X.ndim != 2:
            raise ValueError(f"X_list[{t}] must be 2-D (n_samples, n_features), got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"task {t} is empty: X_list[{t}] has no rows")
        if X.shape[1] == 0:
            raise ValueError(f"X_list[{t}] has no features")
        expected = out[0].shape[1] if out else n_features
        if expected is not None and X.shape[1] != expected:
            raise ValueError(
                f"all tasks must have the same number of features: X_list[{t}] has "
                f"{X.shape[1]}, expected {expected}"
            )
        out.append(X)
    return out


def check_tasks(
    X_list: Sequence[np.ndarray], y_list: Sequence[np.ndarray], n_features: int | None = None
) -> tuple[ArrayList, ArrayList]:
    """Validate ``X_list`` and ``y_list`` together (see :func:`check_X_list`).

    Targets may be given as ``(n_t,)`` or ``(n_t, 1)``; they are returned 1-D.

    Raises:
        ValueError: different numbers of tasks in ``X_list`` and ``y_list``, a
            target with more than one column, a target whose length differs from
            its task's row count, or NaN / inf targets.
    """
    X_out = check_X_list(X_list, n_features)
    y_list = _as_list(y_list, "y_list")
    if len(y_list) != len(X_out):
        raise ValueError(
            f"X_list has {len(X_out)} tasks but y_list has {len(y_list)}"
        )
    y_out = []
    for t, (X, y) in enumerate(zip(X_out, y_list)):
        y = _as_finite_float(y, f"y_list[{t}]")
        _check_magnitude(y, f"y_list[{t}]")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"y_list[{t}] must be 1-D (one target per task), got shape {y.shape}")
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"task {t}: X_list[{t}] has {X.shape[0]} rows but y_list[{t}] has {y.shape[0]} targets"
            )
        y_out.append(y)
    return X_out, y_out
