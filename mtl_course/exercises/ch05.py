"""Checkers for the exercises of chapter 5, "Soft parameter sharing".

Each checker prints one message (``Correct``, ``Not yet`` with a hint, or
``Not answered yet`` for the placeholder ``...``) and returns ``True`` or
``False``; reading and comparing answers is :mod:`mtl_course.exercises.grading`.
"""

from __future__ import annotations

import numpy as np

from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_number,
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
    "PENALTY_SETTING",
    "TRACE_NORM_MATRICES",
    "check_l2_coupling",
    "check_penalty_gradient",
    "check_seed_table",
    "check_trace_norms",
    "l2_coupling",
    "l2_penalty_gradient",
]

#: Exercise ch5-ex-gradient: three towers with two parameters each, and the strength.
PENALTY_SETTING = {"theta": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), "strength": 0.5}

#: Exercise ch5-ex-trace: the matrices W (rows = tasks) of the exercise.
TRACE_NORM_MATRICES = {
    "equal": np.array([[1.0, 0.0], [1.0, 0.0]]),
    "parallel": np.array([[1.0, 0.0], [2.0, 0.0]]),
    "orthogonal": np.array([[1.0, 0.0], [0.0, 1.0]]),
}


def l2_penalty_gradient(theta: np.ndarray, strength: float) -> np.ndarray:
    r"""Gradient of ``strength * sum_{t<s} ||theta_t - theta_s||^2`` with respect to every ``theta_t``:
    ``2 * strength * sum_{s != t} (theta_t - theta_s) = 2 * strength * (T theta_t - sum_s theta_s)``."""
    theta = np.asarray(theta, dtype=float)
    return 2.0 * strength * (len(theta) * theta - theta.sum(axis=0))


def check_penalty_gradient(gradient: object) -> bool:
    """Exercise ch5-ex-gradient: the two components of the gradient of the L2 coupling penalty
    with respect to task 1's parameters ``theta_1``, in the setting :data:`PENALTY_SETTING`."""
    if is_placeholder(gradient):
        return not_answered()
    answer = as_vector(gradient, (2,))
    if answer is None:
        return feedback(False, f"answer with the two components of the gradient (it has the shape of "
                               f"theta_1), e.g. [0.5, -1.0]; got {gradient!r}.")
    theta, strength = PENALTY_SETTING["theta"], PENALTY_SETTING["strength"]
    expected = l2_penalty_gradient(theta, strength)[0]
    verdict = closeness(answer, expected)
    if verdict == "right":
        return feedback(True, "the penalty pulls task 1's parameters towards the other towers, harder the "
                              "farther they are.")
    if matches(answer, expected / 2):
        return feedback(False, "missing the factor 2 from differentiating the square.")
    if matches(answer, -expected):
        return feedback(False, "wrong sign: the gradient points away from the other towers; the descent step "
                               "goes towards them.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    wrong = [i + 1 for i in wrong_components(answer, expected)]
    return feedback(False, f"component{'s' if len(wrong) > 1 else ''} {' and '.join(map(str, wrong))} "
                           f"{'are' if len(wrong) > 1 else 'is'} off. Only the pairs (1, 2) and (1, 3) involve "
                           "theta_1; differentiate ||theta_1 - theta_s||^2 for each.")


def check_trace_norms(equal: object, parallel: object, orthogonal: object) -> bool:
    """Exercise ch5-ex-trace: the trace (nuclear) norms of the three matrices of
    :data:`TRACE_NORM_MATRICES`."""
    answers = {"equal": equal, "parallel": parallel, "orthogonal": orthogonal}
    if any(is_placeholder(v) for v in answers.values()):
        return not_answered()
    values = {name: as_number(v) for name, v in answers.items()}
    for name, value in values.items():
        if value is None:
            return feedback(False, f"`{name}` should be one finite number, got {answers[name]!r}.")
    close = []
    for name, value in values.items():
        expected = float(np.linalg.norm(TRACE_NORM_MATRICES[name], ord="nuc"))
        verdict = closeness(value, expected)
        if verdict == "close":
            close.append(name)
        elif verdict == "wrong":
            frobenius = float(np.linalg.norm(TRACE_NORM_MATRICES[name]))
            hint = (" That is the Frobenius norm (root of the sum of squared singular values); the trace norm "
                    "sums them." if matches(value, frobenius) else
                    " The trace norm is the sum of the singular values.")
            return feedback(False, f"the trace norm of the `{name}` matrix is not right.{hint}")
    if close:
        return feedback(False, f"{', '.join(close)}: " + CLOSE_MESSAGE)
    return feedback(True, "rank-one matrices (parallel task vectors) are cheap even when the rows differ, so the "
                          "trace norm asks the tasks to share directions, not to be equal as the L2 penalty does.")


# ---------------------------------------------------------------- graded function (exercise ch5-ex-coupling)


def l2_coupling(towers: list[np.ndarray]) -> float:
    r"""The reference: ``sum_{t<s} ||theta_t - theta_s||^2`` over the towers' parameter vectors."""
    theta = np.stack([np.asarray(t, dtype=np.float64).reshape(-1) for t in towers])
    total = 0.0
    for t in range(len(theta)):
        for s in range(t + 1, len(theta)):
            total += float(np.sum((theta[t] - theta[s]) ** 2))
    return total


def _ordered_pairs(towers: list[np.ndarray]) -> float:
    return 2.0 * l2_coupling(towers)


def _not_squared(towers: list[np.ndarray]) -> float:
    theta = [np.asarray(t, dtype=np.float64).reshape(-1) for t in towers]
    return float(sum(np.linalg.norm(theta[t] - theta[s]) for t in range(len(theta)) for s in range(t + 1, len(theta))))


def _adjacent_only(towers: list[np.ndarray]) -> float:
    theta = [np.asarray(t, dtype=np.float64).reshape(-1) for t in towers]
    return float(sum(np.sum((a - b) ** 2) for a, b in zip(theta, theta[1:])))


def _to_mean(towers: list[np.ndarray]) -> float:
    theta = np.stack([np.asarray(t, dtype=np.float64).reshape(-1) for t in towers])
    return float(np.sum((theta - theta.mean(axis=0)) ** 2))


def _coupling_cases(seed: int = 505) -> list[tuple[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    cases = [([row.copy() for row in PENALTY_SETTING["theta"]],)]
    for num_towers, size in ((2, 5), (3, 4), (4, 7), (5, 3)):
        cases.append(([rng.normal(size=size) for _ in range(num_towers)],))
    return cases


def check_l2_coupling(fn: object, framework: str = "torch") -> bool:
    """Exercise ch5-ex-coupling: ``fn(towers)`` returns ``sum_{t<s} ||theta_t - theta_s||^2`` (no
    strength) for a list of the towers' parameter vectors, as a scalar tensor (``framework``:
    ``"torch"``, ``"tf"`` or ``"numpy"``). Graded on hidden sets of 2 to 5 towers."""
    return grade_function(
        fn, l2_coupling, _coupling_cases(), ("towers",), framework=framework, what="your `l2_coupling`",
        mistakes=[(_ordered_pairs, "Each pair counts once (t < s); you counted (t, s) and (s, t)."),
                  (_not_squared, "The coupling uses the squared distance."),
                  (_adjacent_only, "Sum over every pair of towers, not only neighbours."),
                  (_to_mean, "That is the distance to the mean tower; it equals the pairwise sum divided by "
                             "the number of towers.")],
        success="every pair of towers is pulled together; with the strength lambda in front, this is the "
                "penalty the chapter's soft-sharing models add to the loss.",
    )


# ---------------------------------------------------------------- sweep table (exercise ch5-ex-seeds)

#: The correlations of the relatedness sweep whose per-seed table exercise ch5-ex-seeds asks for.
SEED_TABLE_CORRELATIONS = (1.0, 0.5, 0.0)


def check_seed_table(table: object, trend: object) -> bool:
    """Exercise ch5-ex-seeds: ``table`` maps each correlation of :data:`SEED_TABLE_CORRELATIONS` to the
    per-seed test MSE of hard sharing relative to separate networks (at least 6 seeds, the same
    seeds in the same order for every correlation); ``trend`` says whether the change from p = 1 to
    p = 0 is established, i.e. whether the seed-paired 95 % interval of the difference excludes 0.

    The checker cannot rerun the sweep; it checks the table's form and that the verdict is the
    one the table supports.
    """
    if is_placeholder(table) or is_placeholder(trend):
        return not_answered("every `...`")
    rows, problem = read_table(table, SEED_TABLE_CORRELATIONS, min_seeds=6)
    if rows is None:
        return feedback(False, f"`table`: {problem}.")
    if any(np.any(row <= 0) for row in rows.values()):
        return feedback(False, "`table`: a ratio of two mean squared errors is positive.")
    if not isinstance(trend, (bool, np.bool_)):
        return feedback(False, f"`trend` should be True or False, got {trend!r}.")
    established = paired_excludes_zero(rows[0.0], rows[1.0])
    if bool(trend) != established:
        return feedback(False, "`trend` does not follow from your table: take the per-seed differences "
                               "between p = 0 and p = 1 (the same seed in both), their mean and 95 % t "
                               "interval, and ask whether the interval excludes 0.")
    return feedback(True, "the verdict follows from the table; a trend in the means that the paired interval "
                          "does not establish is not a finding.")
