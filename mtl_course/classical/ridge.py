"""The two baselines of multi-task learning: no sharing and full sharing."""

from __future__ import annotations

import numpy as np

from mtl_course.checks import check_nonnegative
from mtl_course.classical.base import MultiTaskLinearModel, solve_coupled_ridge


class IndependentRidge(MultiTaskLinearModel):
    """One ridge regression per task, nothing shared (the single-task baseline).

    Objective (book eq. ``ch3-independent``), solved exactly, task by task:

        min_W  sum_t ||y_t - X_t w_t - b_t||^2 + alpha sum_t ||w_t||^2 .

    Each row of ``coef_`` equals ``sklearn.linear_model.Ridge(alpha)`` fitted
    on that task alone. ``alpha = 0`` gives ordinary least squares (the
    minimum-norm solution when a task has fewer samples than features).

    Args:
        alpha: ridge strength, >= 0.
        fit_intercept: fit one unpenalized intercept per task (default True).
    """

    def __init__(self, alpha: float = 1.0, *, fit_intercept: bool = True) -> None:
        super().__init__(fit_intercept=fit_intercept)
        self.alpha = alpha

    def _fit_coef(self, X_list, y_list):
        alpha = check_nonnegative(self.alpha, "alpha")
        return np.stack([solve_coupled_ridge([X], [y], np.array([[alpha]]))[0] for X, y in zip(X_list, y_list)])

    def penalty(self, W: np.ndarray) -> float:
        return float(self.alpha * np.sum(W**2))


class PooledRidge(MultiTaskLinearModel):
    """One ridge regression on the union of all tasks (the full-sharing baseline).

    Every task gets the same weights ``w`` (and, with ``fit_intercept``, the same
    intercept ``b``); book eq. ``ch3-pooled``:

        min_w  sum_t ||y_t - X_t w - b||^2 + alpha ||w||^2 .

    Equals ``sklearn.linear_model.Ridge(alpha)`` fitted on the stacked data.
    ``coef_`` still has one (identical) row per task, so all estimators share
    one interface.

    Args:
        alpha: ridge strength, >= 0.
        fit_intercept: fit one unpenalized intercept shared by all tasks (default True).
    """

    _shared_intercept = True

    def __init__(self, alpha: float = 1.0, *, fit_intercept: bool = True) -> None:
        super().__init__(fit_intercept=fit_intercept)
        self.alpha = alpha

    def _fit_coef(self, X_list, y_list):
        alpha = check_nonnegative(self.alpha, "alpha")
        w = solve_coupled_ridge([np.concatenate(X_list)], [np.concatenate(y_list)], np.array([[alpha]]))[0]
        return np.tile(w, (len(X_list), 1))

    def penalty(self, W: np.ndarray) -> float:
        # All rows are equal: the penalty counts the single shared vector once.
        return float(self.alpha * np.sum(W[0] ** 2))
