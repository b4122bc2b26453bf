"""Checkers for the exercises of chapter 7, "Loss weighting".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
The reference answers come from the package's rules in
:mod:`mtl_course.core.weighting`, except the GradNorm step, which the exercise
spells out (one plain gradient step on ``L_grad``, then renormalisation) and
:func:`gradnorm_exercise_step` computes.
"""

from __future__ import annotations

import numpy as np

from mtl_course.core.weighting import dwa_weights, uncertainty_optimum
from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_vector,
    closeness,
    feedback,
    grade_function,
    is_placeholder,
    matches,
    not_answered,
    paired_excludes_zero,
    read_table,
    wrong_components,
)

__all__ = [
    "DWA_SETTING",
    "GRADNORM_SETTING",
    "UNCERTAINTY_SETTING",
    "check_dwa_function",
    "check_dwa_weights",
    "check_gradnorm_step",
    "check_uncertainty_optimum",
    "check_alpha_table",
    "gradnorm_exercise_step",
]

#: Exercise ch7-ex-uncertainty: a regression loss and a classification loss, held fixed.
UNCERTAINTY_SETTING = {"losses": (0.5, 2.0), "kinds": ("regression", "classification")}

#: Exercise ch7-ex-gradnorm: one GradNorm step for three tasks. The numbers are chosen so that
#: each common mistake (alpha left out or taken as 1, r_i not divided by its mean or upside
#: down, the mean of n_i instead of the mean of G_i, a step without n_i, the sign flipped, no
#: renormalisation) gives different new weights.
GRADNORM_SETTING = {"weights": (1.2, 0.6, 1.2), "grad_norms": (3.0, 4.0, 1.0), "losses": (0.8, 0.5, 0.3),
                    "initial_losses": (2.0, 2.0, 2.0), "alpha": 1.5, "lr": 0.1}

#: Exercise ch7-ex-dwa: epoch-average losses of two tasks, oldest first, and the temperature.
DWA_SETTING = {"loss_history": ((1.0, 2.0), (0.5, 1.8)), "temperature": 2.0}


def _components(wrong: list[int], what: str) -> str:
    return f"{what} of task{'s' if len(wrong) > 1 else ''} {' and '.join(str(i + 1) for i in wrong)}"


def _pair(name: str, value: object, count: int) -> np.ndarray | None:
    array = as_vector(value, (count,))
    if array is None:
        feedback(False, f"`{name}` should be {count} finite numbers, got {value!r}.")
    return array


def check_uncertainty_optimum(sigma_squared: object, weights: object) -> bool:
    """Exercise ch7-ex-uncertainty: the optimal ``sigma_i^2`` and the effective weights
    (the factors in front of ``L_i``) for the fixed losses of :data:`UNCERTAINTY_SETTING`."""
    if is_placeholder(sigma_squared) or is_placeholder(weights):
        return not_answered()
    s2 = _pair("sigma_squared", sigma_squared, 2)
    if s2 is None:
        return False
    w = _pair("weights", weights, 2)
    if w is None:
        return False
    losses = np.array(UNCERTAINTY_SETTING["losses"])
    expected_s2 = np.exp(uncertainty_optimum(losses, UNCERTAINTY_SETTING["kinds"]))
    expected_w = 1.0 / (2.0 * losses)
    s2_verdict, w_verdict = closeness(s2, expected_s2), closeness(w, expected_w)
    if s2_verdict == w_verdict == "right":
        return feedback(True, "at the optimum every task's loss is multiplied by 1 / (2 L_i): the larger the "
                              "loss, the smaller its weight, whatever the task's kind.")
    if s2_verdict != "right":
        if matches(s2, losses):
            return feedback(False, "sigma^2 = L is right for the regression task only: the classification term "
                                   "is L / sigma^2 + log sigma (no factor 1/2), which moves its optimum.")
        if s2_verdict == "close":
            return feedback(False, "`sigma_squared`: " + CLOSE_MESSAGE)
        return feedback(False, f"{_components(wrong_components(s2, expected_s2), 'sigma^2')} off: set the "
                               "derivative of c L / sigma^2 + log sigma with respect to sigma to zero "
                               "(c = 1/2 for regression, 1 for classification).")
    if matches(w, 1.0 / expected_s2):
        return feedback(False, "the sigma^2 are right; the weight is c / sigma^2, not 1 / sigma^2 "
                               "(c = 1/2 for the regression task).")
    if w_verdict == "close":
        return feedback(False, "`weights`: " + CLOSE_MESSAGE)
    return feedback(False, f"the sigma^2 are right; {_components(wrong_components(w, expected_w), 'the weight')} "
                           "off: the effective weight of task i is c_i / sigma_i^2.")


def gradnorm_exercise_step(weights: np.ndarray, grad_norms: np.ndarray, losses: np.ndarray,
                           initial_losses: np.ndarray, alpha: float, lr: float
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""One GradNorm step as the exercise spells it out; returns ``(r, targets, new_weights)``.

    ``r_i = (L_i / L_i(0)) / mean_j(L_j / L_j(0))``, targets ``mean_j(G_j) r_i^alpha`` with
    ``G_i = w_i n_i`` (Chen et al., ICML 2018, eq. 2), one gradient step on
    ``L_grad = sum_i |G_i - target_i|`` with the targets held constant,
    ``w_i -= lr sign(G_i - target_i) n_i``, then ``w`` rescaled to sum to the number of tasks.
    """
    w, n = np.asarray(weights, dtype=float), np.asarray(grad_norms, dtype=float)
    ratio = np.asarray(losses, dtype=float) / np.asarray(initial_losses, dtype=float)
    r = ratio / ratio.mean()
    G = w * n
    targets = G.mean() * r**alpha
    new = w - lr * np.sign(G - targets) * n
    return r, targets, len(w) * new / new.sum()


def _gradnorm_arrays() -> dict:
    return {k: np.array(v) if isinstance(v, tuple) else v for k, v in GRADNORM_SETTING.items()}


def check_gradnorm_step(ratios: object, targets: object, new_weights: object) -> bool:
    """Exercise ch7-ex-gradnorm: the relative inverse training rates ``r_i``, the targets
    ``mean(G) r_i^alpha`` and the weights after one GradNorm step with :data:`GRADNORM_SETTING`."""
    if any(is_placeholder(v) for v in (ratios, targets, new_weights)):
        return not_answered("every `...`")
    s = _gradnorm_arrays()
    K = len(s["weights"])
    answers = {}
    for name, value in (("ratios", ratios), ("targets", targets), ("new_weights", new_weights)):
        answers[name] = _pair(name, value, K)
        if answers[name] is None:
            return False
    r, t, new = gradnorm_exercise_step(s["weights"], s["grad_norms"], s["losses"], s["initial_losses"],
                                       s["alpha"], s["lr"])
    ratio = s["losses"] / s["initial_losses"]
    verdict = closeness(answers["ratios"], r)
    if verdict != "right":
        if matches(answers["ratios"], ratio):
            return feedback(False, "`ratios`: divide each loss ratio L_i / L_i(0) by the mean ratio over the tasks.")
        inverse = (1 / ratio) / np.mean(1 / ratio)
        if matches(answers["ratios"], inverse):
            return feedback(False, "`ratios`: upside down; r_i is the loss ratio L_i / L_i(0) (how much of its "
                                   "loss a task has kept), divided by its mean.")
        if verdict == "close":
            return feedback(False, "`ratios`: " + CLOSE_MESSAGE)
        return feedback(False, f"`ratios`: {_components(wrong_components(answers['ratios'], r), 'r_i')} off.")
    G = s["weights"] * s["grad_norms"]
    verdict = closeness(answers["targets"], t)
    if verdict != "right":
        candidates = [
            (G.mean() * np.ones(K), "that is alpha = 0; raise r_i to the power alpha = 1.5."),
            (G.mean() * r, "that is alpha = 1; raise r_i to the power alpha = 1.5."),
            (s["grad_norms"].mean() * r ** s["alpha"], "the average is over the weighted norms G_i = w_i n_i, "
                                                        "not over the n_i."),
            (r ** s["alpha"], "multiply r_i^alpha by the mean weighted gradient norm mean_j G_j."),
        ]
        for candidate, hint in candidates:
            if matches(answers["targets"], candidate):
                return feedback(False, "`targets`: " + hint)
        if verdict == "close":
            return feedback(False, "`targets`: " + CLOSE_MESSAGE)
        return feedback(False, f"`targets`: {_components(wrong_components(answers['targets'], t), 'the target')} "
                               "off: target_i = mean_j(G_j) r_i^alpha with G_j = w_j n_j.")
    verdict = closeness(answers["new_weights"], new)
    if verdict == "right":
        return feedback(True, "a task whose loss falls more slowly than average (r_i > 1) gets a higher target, "
                              "and its weight rises if its weighted gradient is below it.")
    step_sign = np.sign(G - t)
    unnormalised = s["weights"] - s["lr"] * step_sign * s["grad_norms"]
    candidates = [
        (unnormalised, "that is the step before the renormalisation: rescale the weights to sum to 3."),
        (K * (s["weights"] - s["lr"] * step_sign) / (s["weights"] - s["lr"] * step_sign).sum(),
         "the derivative of |w_i n_i - target_i| with respect to w_i is sign(G_i - target_i) n_i: keep the n_i."),
        (K * (s["weights"] + s["lr"] * step_sign * s["grad_norms"])
         / (s["weights"] + s["lr"] * step_sign * s["grad_norms"]).sum(),
         "a descent step goes against the gradient: w_i -= lr sign(G_i - target_i) n_i."),
    ]
    for candidate, hint in candidates:
        if matches(answers["new_weights"], candidate):
            return feedback(False, "`new_weights`: " + hint)
    if abs(answers["new_weights"].sum() - K) > 1e-3 * K:
        return feedback(False, "`new_weights`: GradNorm's weights sum to the number of tasks (3) after every step.")
    if verdict == "close":
        return feedback(False, "`new_weights`: " + CLOSE_MESSAGE)
    return feedback(False, "`ratios` and `targets` are right; `new_weights` is not: "
                           f"{_components(wrong_components(answers['new_weights'], new), 'the weight')} off. Step "
                           "w_i -= lr sign(G_i - target_i) n_i, then renormalise.")


def _dwa_flipped(history: np.ndarray, temperature: float) -> np.ndarray:
    return dwa_weights(np.asarray(history)[[-1, -2]], temperature)


def _dwa_no_k(history: np.ndarray, temperature: float) -> np.ndarray:
    history = np.asarray(history)
    return dwa_weights(history, temperature) / history.shape[1]


def check_dwa_weights(weights: object) -> bool:
    """Exercise ch7-ex-dwa: Dynamic Weight Average's weights for the next epoch from :data:`DWA_SETTING`."""
    if is_placeholder(weights):
        return not_answered()
    w = _pair("weights", weights, 2)
    if w is None:
        return False
    history, tau = np.array(DWA_SETTING["loss_history"]), DWA_SETTING["temperature"]
    expected = dwa_weights(history, tau)
    verdict = closeness(w, expected)
    if verdict == "right":
        return feedback(True, "the task whose loss fell less gets more weight.")
    if matches(w, _dwa_no_k(history, tau)):
        return feedback(False, "DWA's weights sum to the number of tasks T = 2: multiply the softmax by T.")
    if matches(w, _dwa_flipped(history, tau)):
        return feedback(False, "the ratio is r_i = L_i(k-1) / L_i(k-2): the latest epoch over the one before.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    return feedback(False, "compute r_i = L_i(k-1) / L_i(k-2), then w_i = T exp(r_i / tau) / sum_j exp(r_j / tau).")


# ---------------------------------------------------------------- graded function (exercise ch7-ex-dwa-code)


def _dwa_cases(seed: int = 707) -> list[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    cases = [(np.array(DWA_SETTING["loss_history"]), DWA_SETTING["temperature"])]
    for epochs, tasks, tau in ((2, 3, 1.0), (4, 2, 0.5), (5, 4, 2.0), (3, 5, 5.0)):
        history = np.exp(np.cumsum(rng.normal(-0.1, 0.4, size=(epochs, tasks)), axis=0)) * rng.uniform(0.1, 10, tasks)
        cases.append((history, tau))
    return cases


def check_dwa_function(fn: object, framework: str = "numpy") -> bool:
    """Exercise ch7-ex-dwa-code: ``fn(history, temperature)`` returns DWA's weights for the next epoch
    from the epoch-average losses ``history`` (shape ``(epochs, T)`` for T tasks, oldest first, at least two
    epochs). Graded on hidden histories of 2 to 5 tasks with very different loss scales."""
    return grade_function(
        fn, dwa_weights, _dwa_cases(), ("history", "temperature"), framework=framework, what="your `dwa`",
        mistakes=[(_dwa_no_k, "The weights sum to the number of tasks T: multiply the softmax by T."),
                  (_dwa_flipped, "Use the latest epoch over the one before: L_i(k-1) / L_i(k-2).")],
        success="only the last two epochs matter, and a task's loss scale cancels in its ratio.",
    )


# ---------------------------------------------------------------- sweep table (exercise ch7-ex-alpha)

#: The GradNorm alphas of exercise ch7-ex-alpha.
ALPHA_TABLE_ALPHAS = (0.0, 1.5, 3.0)


def check_alpha_table(table: object, follows: object) -> bool:
    """Exercise ch7-ex-alpha: ``table`` maps each alpha of :data:`ALPHA_TABLE_ALPHAS` to the small
    task's per-seed test error (at least 3 seeds, the same seeds in the same order for every alpha);
    ``follows`` says whether the error at alpha = 3 is established to be lower than at alpha = 0
    (the seed-paired 95 % interval of the difference excludes 0 and the mean difference is negative).

    The checker cannot rerun the training; it checks the table's form and that the verdict is
    the one the table supports.
    """
    if is_placeholder(table) or is_placeholder(follows):
        return not_answered("every `...`")
    rows, problem = read_table(table, ALPHA_TABLE_ALPHAS, min_seeds=3)
    if rows is None:
        return feedback(False, f"`table`: {problem}.")
    if any(np.any(row < 0) for row in rows.values()):
        return feedback(False, "`table`: a test error is not negative.")
    if not isinstance(follows, (bool, np.bool_)):
        return feedback(False, f"`follows` should be True or False, got {follows!r}.")
    lower = paired_excludes_zero(rows[3.0], rows[0.0]) and float(np.mean(rows[3.0] - rows[0.0])) < 0
    if bool(follows) != lower:
        return feedback(False, "`follows` does not match your table: take the per-seed differences between "
                               "alpha = 3 and alpha = 0, and ask whether their 95 % t interval lies below 0.")
    return feedback(True, "the verdict follows from the table; with a few seeds, say \"not established\" "
                          "rather than reading a trend into the means.")
