"""Checkers for the exercises of chapter 4, "Hard parameter sharing".

Each checker prints a short message (``Correct`` or ``Not yet``, with a hint)
and returns ``True`` or ``False``. Malformed answers get a message that
explains the expected form instead of an exception.
"""

from __future__ import annotations

from numbers import Integral

from mtl_course.experiments.sharing import hard_sharing_parameter_count, separate_parameter_count

__all__ = ["COUNT_SETTING", "check_parameter_counts", "check_accumulated_loop"]

#: Exercise ch4-ex-params: 128 inputs, a trunk of one hidden layer of 64 units,
#: and per task a head with one hidden layer of 32 units; 10, 10 and 2 classes.
COUNT_SETTING = {"d_in": 128, "hidden": (64,), "head_hidden": (32,), "outputs": {"left": 10, "right": 10, "parity": 2}}

_LOOP_TASKS = 4  # exercise ch4-ex-loop


def _say(correct: bool, message: str) -> bool:
    print(("Correct: " if correct else "Not yet: ") + message)
    return correct


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_parameter_counts(hard: object, separate: object) -> bool:
    """Exercise ch4-ex-params: the parameter counts of the hard-shared network and of the
    three single-task networks together, in the setting :data:`COUNT_SETTING`."""
    for name, value in (("hard", hard), ("separate", separate)):
        if not _is_int(value):
            return _say(False, f"`{name}` should be a whole number of parameters, got {value!r}.")
    setting = dict(COUNT_SETTING)
    expected_hard = hard_sharing_parameter_count(**setting)
    expected_separate = separate_parameter_count(**setting)
    trunk = (128 + 1) * 64
    if int(hard) != expected_hard:
        if int(hard) == expected_hard - 3 * 32 - 10 - 10 - 2 - 64:
            return _say(False, "the hard-shared count misses the biases: "
                        "a Linear(a, b) layer has (a + 1) * b parameters.")
        if int(hard) == expected_hard - trunk:
            return _say(False, "the hard-shared count misses the trunk, Linear(128, 64).")
        return _say(False, "the hard-shared count is off: add one trunk (128 -> 64) and three heads "
                    "(64 -> 32 -> C_t), each Linear(a, b) with (a + 1) * b parameters.")
    if int(separate) != expected_separate:
        if int(separate) == expected_hard:
            return _say(False, "the hard-shared count is right; the separate networks each have their own trunk.")
        return _say(False, "the hard-shared count is right, the separate one is not: three trunks and three heads.")
    return _say(True, f"{expected_hard} shared against {expected_separate} separate: sharing the trunk saves "
                f"two trunks, {2 * trunk} parameters.")


def check_accumulated_loop(multiples: object) -> bool:
    """Exercise ch4-ex-loop: how many times the buggy loop of the chapter applies each of
    four tasks' gradients, as a list ``[m_1, m_2, m_3, m_4]``."""
    if isinstance(multiples, (str, bytes)) or not hasattr(multiples, "__iter__"):
        return _say(False, f"answer with a list of {_LOOP_TASKS} whole numbers, got {multiples!r}.")
    values = list(multiples)
    if len(values) != _LOOP_TASKS or not all(_is_int(v) for v in values):
        return _say(False, f"answer with a list of {_LOOP_TASKS} whole numbers, one per task, got {multiples!r}.")
    expected = list(range(_LOOP_TASKS, 0, -1))
    if [int(v) for v in values] == expected:
        return _say(True, "the loop calls backward on L_1, L_1 + L_2, ..., so task t's gradient is added "
                    "T - t + 1 times: [4, 3, 2, 1] instead of [1, 1, 1, 1].")
    if [int(v) for v in values] == expected[::-1]:
        return _say(False, "reversed: the FIRST task's loss is in every partial sum.")
    if [int(v) for v in values] == [1] * _LOOP_TASKS:
        return _say(False, "that is what the correct code gives; in the loop, each backward call adds the "
                    "gradient of the whole partial sum.")
    return _say(False, "write down the partial sums L_1, L_1 + L_2, ... that backward is called on, and count.")
