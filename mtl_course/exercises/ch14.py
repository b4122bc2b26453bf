"""Checkers for the exercises of chapter 14, "Challenges and FAQ".

The exercises use results that earlier chapters print; the constants below
quote them. Each checker prints a short message (``Correct`` or ``Not yet``,
with a hint) and returns ``True`` or ``False``. Malformed answers get a
message that explains the expected form instead of an exception.
"""

from __future__ import annotations

import numpy as np

from mtl_course.exercises.grading import (
    CLOSE_MESSAGE,
    as_number,
    closeness,
    feedback,
    grade_function,
    is_placeholder,
    matches,
    not_answered,
)
from mtl_course.metrics import delta_m

__all__ = [
    "CH4_MEAN_ACCURACY",
    "CH4_PRINTED_DELTA_M",
    "CLAIMS",
    "check_claims",
    "check_delta_m_function",
    "check_false_alarms",
    "check_hard_sharing_delta_m",
    "expected_hard_sharing_delta_m",
]

#: Exercise ch14-ex-deltam: mean test accuracies over three seeds of a chapter 4 style experiment (made-up numbers)
#: ("separate" and "hard, same width" on the two-digit task), as the exercise states them.
CH4_MEAN_ACCURACY = {
    "separate": {"left": 0.918, "right": 0.930, "parity": 0.794},
    "hard, same width": {"left": 0.902, "right": 0.900, "parity": 0.757},
}

#: The Delta_m (percent) the exercise gives for "hard, same width": the mean of the per-seed values.
CH4_PRINTED_DELTA_M = -3.19

#: Exercise ch14-ex-claims: statements about the book's experiments; the answer says which
#: the printed results support (True) and which they contradict (False).
CLAIMS = {
    "a": "Chapter 4: hard sharing at the same parameter budget beat separate networks on each of "
         "the three tasks of the two-digit task (left digit, right digit, parity).",
    "b": "Chapter 1: on unrelated tasks, pooling all tasks into one model stayed worse than "
         "single-task learning at every sample size.",
    "c": "Chapter 9: on multi_digits, one step down equal weighting's learning-rate grid (0.03 to "
         "0.01) made no established difference in Delta_m, while the best and the worst of the methods "
         "other than RLW, each at its tuned learning rate, differed by an established margin.",
    "d": "Chapter 10: the lookahead affinity is symmetric, Z(i -> j) = Z(j -> i).",
    "e": "Chapter 11: Reptile had the lowest test error for every number K of examples.",
}

_CLAIM_ANSWERS = {"a": False, "b": True, "c": True, "d": False, "e": False}

_CLAIM_EVIDENCE = {
    "a": "it beat separate networks on Delta_m and on parity, but no difference was established on "
         "the left digit or on the right digit.",
    "b": "pooled ridge stayed at 1.15-1.21 while single-task ridge fell from 1.04 to 0.33.",
    "c": "lr 0.03 against lr 0.01: no difference established (mean difference 0, 95% CI [-3, 3]); "
         "GradNorm beat uncertainty weighting by 2 pp (95% CI [1, 4]).",
    "d": "a0 -> a1 was 2.556 and a1 -> a0 was 2.871 (x 100): the receiving task's loss differs.",
    "e": "at K = 20 a ridge head on the multi-task network beat Reptile, fine-tuned or with the same "
         "ridge head.",
}


def expected_hard_sharing_delta_m() -> float:
    """The answer of exercise ch14-ex-deltam: :func:`mtl_course.metrics.delta_m` of the
    same-width shared network against separate networks, from :data:`CH4_MEAN_ACCURACY`."""
    scores = CH4_MEAN_ACCURACY
    higher = {task: True for task in scores["separate"]}
    return delta_m(scores["hard, same width"], scores["separate"], higher)


def check_hard_sharing_delta_m(answer: object) -> bool:
    """Exercise ch14-ex-deltam: Delta_m in percent of the same-width shared network of chapter 4."""
    if is_placeholder(answer):
        return not_answered()
    value = as_number(answer)
    if value is None:
        return feedback(False, f"give Delta_m as one finite number in percent (e.g. -1.5), got {answer!r}.")
    target = expected_hard_sharing_delta_m()
    verdict = closeness(value, target)
    if verdict == "right":
        return feedback(True, "Delta_m of the mean accuracies is close to, but not the same as, the mean of "
                              "the per-seed Delta_m the exercise gives: Delta_m is not linear in the scores.")
    if matches(value, -target):
        return feedback(False, "the sign is reversed: the shared network is less accurate on every task, "
                               "so Delta_m is negative.")
    if matches(value, CH4_PRINTED_DELTA_M):
        return feedback(False, "that is chapter 4's mean of the per-seed Delta_m; compute Delta_m from the "
                               "mean accuracies in CH4_MEAN_ACCURACY instead.")
    if matches(value, target / 100):
        return feedback(False, "that is a fraction; Delta_m is reported in percent (multiply by 100).")
    if matches(value, 3 * target):
        return feedback(False, "Delta_m averages over the tasks: divide the sum by the number of tasks.")
    if verdict == "close":
        return feedback(False, CLOSE_MESSAGE)
    return feedback(False, "for each task compute (M_shared - M_separate) / M_separate (accuracy: higher "
                           "is better, no sign flip), average over the three tasks, multiply by 100.")


def check_claims(answer: object) -> bool:
    """Exercise ch14-ex-claims: a dict mapping each key of :data:`CLAIMS` to True (supported
    by the printed results) or False (contradicted)."""
    if is_placeholder(answer) or (isinstance(answer, dict) and any(is_placeholder(v) for v in answer.values())):
        return not_answered("every `...`")
    if not isinstance(answer, dict) or set(answer) != set(CLAIMS) or \
            not all(isinstance(v, bool) for v in answer.values()):
        return feedback(False, "give a dict with the keys 'a' to 'e' and the values True or False, e.g. "
                           "{'a': True, 'b': False, ...}.")
    wrong = sorted(key for key in CLAIMS if answer[key] != _CLAIM_ANSWERS[key])
    if wrong:
        first = wrong[0]
        return feedback(False, f"{len(wrong)} of 5 wrong. Look again at claim {first!r} in the chapter "
                           "it names and compare it with the table that chapter prints.")
    return feedback(True, " ".join(f"({key}) {_CLAIM_EVIDENCE[key]}" for key in sorted(CLAIMS)))


# ---------------------------------------------------------------- graded function (exercise ch14-ex-deltam-code)


def _delta_m_cases(seed: int = 1414) -> list[tuple[dict, dict, dict]]:
    rng = np.random.default_rng(seed)
    cases = [(CH4_MEAN_ACCURACY["hard, same width"], CH4_MEAN_ACCURACY["separate"],
              {task: True for task in CH4_MEAN_ACCURACY["separate"]})]
    for tasks in (2, 3, 4):
        names = [f"task{i}" for i in range(tasks)]
        base = {name: round(float(rng.uniform(0.2, 2.0)), 3) for name in names}
        model = {name: round(base[name] * float(rng.uniform(0.8, 1.2)), 3) for name in names}
        higher = {name: bool(rng.integers(0, 2)) for name in names}
        higher[names[0]], higher[names[-1]] = True, False  # both kinds in every case
        cases.append((model, base, higher))
    return cases


def _no_sign_flip(model: dict, base: dict, higher: dict) -> float:
    return 100 * float(np.mean([(model[t] - base[t]) / base[t] for t in base]))


def _as_fraction(model: dict, base: dict, higher: dict) -> float:
    return delta_m(model, base, higher) / 100


def check_delta_m_function(fn: object) -> bool:
    """Exercise ch14-ex-deltam-code: ``fn(model, base, higher_is_better)`` returns Delta_m in percent,
    for dicts mapping each task to the model's score, the baseline's score and whether higher is
    better. Graded on hidden score tables that mix higher- and lower-is-better tasks."""
    return grade_function(
        fn, delta_m, _delta_m_cases(), ("model", "base", "higher_is_better"), what="your `delta_m`",
        mistakes=[(_no_sign_flip, "Flip the sign of the relative change for lower-is-better tasks."),
                  (_as_fraction, "Report Delta_m in percent (multiply by 100).")],
        success="Delta_m averages the signed relative changes, so every task counts the same whatever its scale.",
    )


# ---------------------------------------------------------------- exercise ch14-ex-falsealarms

#: Exercise ch14-ex-falsealarms: paired comparisons made in an earlier version of chapter 9, their level,
#: and the verdicts found.
FALSE_ALARM_SETTING = {"comparisons": 24, "level": 0.05, "found": 3}


def check_false_alarms(expected: object, p_at_least: object) -> bool:
    """Exercise ch14-ex-falsealarms: the expected number of comparisons that clear the 95 % bar by
    chance, and the probability that at least ``found`` of them do, if no method differs and the
    comparisons are independent (binomial)."""
    from scipy import stats

    if is_placeholder(expected) or is_placeholder(p_at_least):
        return not_answered("every `...`")
    values = {"expected": as_number(expected), "p_at_least": as_number(p_at_least)}
    for name, value in values.items():
        if value is None:
            return feedback(False, f"`{name}` should be one finite number.")
    n, p, k = FALSE_ALARM_SETTING["comparisons"], FALSE_ALARM_SETTING["level"], FALSE_ALARM_SETTING["found"]
    verdict = closeness(values["expected"], n * p)
    if verdict != "right":
        return feedback(False, "`expected`: " + (CLOSE_MESSAGE if verdict == "close" else
                                                 "each comparison clears the bar with probability 0.05."))
    target = float(stats.binom.sf(k - 1, n, p))
    verdict = closeness(values["p_at_least"], target)
    if verdict == "right":
        return feedback(True, "a handful of verdicts among many comparisons is what chance alone produces "
                              "quite often.")
    if matches(values["p_at_least"], float(stats.binom.sf(k, n, p))):
        return feedback(False, "`p_at_least`: that is P(more than 3); 'at least three' includes exactly three: "
                               "use the survival function at 2.")
    if matches(values["p_at_least"], float(stats.binom.pmf(k, n, p))):
        return feedback(False, "`p_at_least`: that is P(exactly 3); add the probabilities of 4, 5, ... too.")
    if matches(values["p_at_least"], p**k):
        return feedback(False, "`p_at_least`: p^3 is the chance that three given comparisons all clear the bar; "
                               "any three of the 24 will do (binomial).")
    if verdict == "close":
        return feedback(False, "`p_at_least`: " + CLOSE_MESSAGE)
    return feedback(False, "`p_at_least`: the number of false alarms is binomial with n = 24 and p = 0.05; "
                           "P(at least 3) = 1 - P(0) - P(1) - P(2).")
