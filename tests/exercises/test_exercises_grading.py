"""The shared grading helpers, and every checker on every kind of answer a reader may give.

Issue 18 listed checkers that crashed on a tensor that requires grad, rejected a
correct scalar given as a 0-d or one-element array or as a torch scalar, rejected
every torch tensor (chapter 7), rejected ``comb``'s float, the package's own
boolean mask, and used four different tolerances. Each of those cases is here.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import scipy.special
import torch

from mtl_course.exercises import ch02, ch05, ch07, ch08, grading
from mtl_course.objective import non_dominated_mask


def _out(capsys) -> str:
    return capsys.readouterr().out


def _flat(capsys) -> str:
    return " ".join(capsys.readouterr().out.split())


# ---------------------------------------------------------------- readers


@pytest.mark.parametrize("value", [
    -1.4, np.float64(-1.4), np.float32(-1.4), np.array(-1.4), np.array([-1.4]), np.array([[-1.4]]),
    torch.tensor(-1.4), torch.tensor([-1.4]), torch.tensor(-1.4, requires_grad=True) * 1.0,
    torch.tensor([-1.4], dtype=torch.float64, requires_grad=True), [torch.tensor(-1.4)],
])
def test_as_number_accepts_every_scalar_form(value):
    assert grading.as_number(value) == pytest.approx(-1.4, rel=1e-6)


@pytest.mark.parametrize("value", ["1.0", None, True, np.bool_(True), float("nan"), float("inf"), [1.0, 2.0],
                                   {"a": 1.0}, ..., np.array(["1"]), torch.tensor(True)])
def test_as_number_rejects_what_is_not_one_finite_number(value):
    assert grading.as_number(value) is None


def test_as_number_reads_tensorflow_tensors():
    import tensorflow as tf

    import mtl_course.tf  # noqa: F401

    assert grading.as_number(tf.constant(-1.4)) == pytest.approx(-1.4)
    assert grading.as_number(tf.Variable([2.5])) == pytest.approx(2.5)
    np.testing.assert_allclose(grading.as_vector(tf.constant([[1.0, 2.0]]), (2,)), [1.0, 2.0])


@pytest.mark.parametrize("value, expected", [(1001, 1001), (1001.0, 1001), (np.int64(56), 56),
                                             (np.float32(56.0), 56), (scipy.special.comb(14, 4), 1001),
                                             (math.comb(14, 4), 1001), (torch.tensor(56), 56),
                                             (np.array([56.0]), 56)])
def test_as_count_accepts_integer_valued_numbers(value, expected):
    assert grading.as_count(value) == expected


@pytest.mark.parametrize("value", [1001.5, "1001", True, None, [1, 2]])
def test_as_count_rejects_non_integers(value):
    assert grading.as_count(value) is None


def test_as_index_set_reads_indices_and_masks():
    assert grading.as_index_set([3, 0, 1], 8) == ({0, 1, 3}, "")
    assert grading.as_index_set(np.array([True, False, True]), 3) == ({0, 2}, "")
    assert grading.as_index_set(torch.tensor([False, True]), 2) == ({1}, "")
    assert grading.as_index_set((5, 4), 8) == ({4, 5}, "")
    assert grading.as_index_set({1, 2}, 8) == ({1, 2}, "")
    assert grading.as_index_set([1.0, 2.0], 8) == ({1, 2}, "")
    indices, message = grading.as_index_set([0, 1, 1], 8)
    assert indices is None and "repeated: [1]" in message
    indices, message = grading.as_index_set([0, 9], 8)
    assert indices is None and "outside" in message
    indices, message = grading.as_index_set(np.array([True, False]), 8)
    assert indices is None and "length" not in message and "one entry per item (8)" in message
    assert grading.as_index_set("013", 8)[0] is None
    assert grading.as_index_set([0.5], 8)[0] is None


def test_closeness_has_one_tolerance_and_a_close_band():
    assert grading.closeness(1.4142, math.sqrt(2)) == "right"
    assert grading.closeness(1.41, math.sqrt(2)) == "close"
    assert grading.closeness(1.3, math.sqrt(2)) == "wrong"
    # a near-zero component is compared at the scale of the vector, not to itself
    assert grading.closeness([1.0, 1e-4], [1.0, 0.0]) == "right"
    assert grading.closeness([1.0, 0.1], [1.0, 0.0]) == "wrong"
    assert grading.wrong_components([1.0, 2.0, 3.5], [1.0, 2.0, 3.0]) == [2]


def test_feedback_is_wrapped_at_88_columns(capsys):
    assert grading.feedback(True, "word " * 100) is True
    lines = _out(capsys).splitlines()
    assert len(lines) > 3 and all(len(line) <= grading.WIDTH for line in lines)
    assert lines[0].startswith("Correct: ")
    assert grading.feedback(None, "x") is False
    assert _out(capsys).startswith("Not answered yet: ")


# ---------------------------------------------------------------- the bugs listed in issue 18


def test_a_tensor_that_requires_grad_is_read_not_crashed_on(capsys):
    assert ch05.check_penalty_gradient(torch.tensor([1.0, 0.0], requires_grad=True)) is False
    assert _out(capsys).startswith("Not yet")
    assert ch05.check_penalty_gradient(torch.tensor([1.0, -2.0], requires_grad=True)) is True
    assert ch08.check_mgda_direction(torch.tensor([16 / 29, 40 / 29], requires_grad=True)) is True


def test_scalars_as_arrays_and_torch_scalars_are_accepted(capsys):
    assert ch02.check_scalarized_minimizers(np.array([-1.4]), np.array([0.4])) is True
    norms = [torch.linalg.matrix_norm(torch.tensor(m), ord="nuc") for m in ch05.TRACE_NORM_MATRICES.values()]
    assert ch05.check_trace_norms(*norms) is True
    cosine = torch.nn.functional.cosine_similarity(torch.tensor(ch08.G1), torch.tensor(ch08.G2), dim=0)
    assert ch08.check_conflict(cosine, True) is True
    assert ch08.check_conflict(cosine, torch.tensor(True)) is True


def test_chapter_7_accepts_torch_tensors(capsys):
    assert ch07.check_dwa_weights(torch.tensor([0.90033, 1.09967])) is True
    assert ch07.check_uncertainty_optimum(torch.tensor([0.5, 4.0]), torch.tensor([1.0, 0.25])) is True


def test_grid_size_accepts_comb_as_a_float(capsys):
    assert ch02.check_grid_size(scipy.special.comb(14, 4)) is True


def test_pareto_checker_accepts_the_package_mask_and_rejects_duplicates(capsys):
    assert ch02.check_pareto_points(non_dominated_mask(ch02.POINTS), [0, 1, 4, 5]) is True
    capsys.readouterr()
    assert ch02.check_pareto_points([0, 1, 3, 4, 5, 5], [0, 1, 4, 5]) is False
    assert "repeated" in _flat(capsys)
    assert ch02.check_pareto_points([0, 1, 3, 4, 5], [0, 1, 4, 5, 6]) is False
    out = _flat(capsys)
    assert "model 6 in `supported` is not Pareto optimal" in out and "neighbours on the front" not in out


def test_one_tolerance_for_every_chapter(capsys):
    # three significant digits are "close" everywhere, and never "correct"
    assert ch05.check_trace_norms(1.41, 2.24, 2) is False
    assert "give more digits" in _flat(capsys)
    assert ch07.check_dwa_weights([0.89, 1.11]) is False
    assert "give more digits" in _flat(capsys)
    assert ch08.check_mgda_direction([0.55, 1.38]) is False
    assert "give more digits" in _flat(capsys)
    assert ch05.check_trace_norms(1.4142, 2.2361, 2) is True


# ---------------------------------------------------------------- every checker, every input type

_S = {k: np.array(v) if isinstance(v, tuple) else v for k, v in ch07.GRADNORM_SETTING.items()}
_GRADNORM = ch07.gradnorm_exercise_step(_S["weights"], _S["grad_norms"], _S["losses"], _S["initial_losses"],
                                        _S["alpha"], _S["lr"])

#: (module, checker, correct arguments worked out by hand, or by a reference the tests check elsewhere)
CORRECT = [
    ("ch01", "check_pooled_floor", (0.625,)),
    ("ch02", "check_pareto_points", ([0, 1, 3, 4, 5], [0, 1, 4, 5])),
    ("ch02", "check_scalarized_minimizers", (-1.4, 0.4)),
    ("ch02", "check_grid_size", (1001,)),
    ("ch03", "check_mean_regularization", (0.5, 1.5)),
    ("ch03", "check_prox_l21", ([[1.8, 0.0, 0.0], [2.4, 0.0, 0.0]],)),
    ("ch03", "check_low_rank_parameter_count", (56,)),
    ("ch04", "check_parameter_counts", (6192 + 2 * 954 + 818, 3 * 6192 + 2 * 954 + 818)),
    ("ch04", "check_accumulated_loop", ([4, 3, 2, 1],)),
    ("ch05", "check_penalty_gradient", ([1.0, -2.0],)),
    ("ch05", "check_trace_norms", (math.sqrt(2), math.sqrt(5), 2.0)),
    ("ch06", "check_parameter_counts", (306 + 2 * 81, 306 + 51 + 2 * 33, 306 + 2 * 51 + 2 * 33)),
    ("ch06", "check_gate_mixture", ([0.5, 3.0],)),
    ("ch06", "check_funnel_rates", (0.2, 0.25, 0.05)),
    ("ch07", "check_uncertainty_optimum", ([0.5, 4.0], [1.0, 0.25])),
    ("ch07", "check_gradnorm_step", tuple(x.tolist() for x in _GRADNORM)),
    ("ch07", "check_dwa_weights", ((2 * np.exp([0.25, 0.45]) / np.exp([0.25, 0.45]).sum()).tolist(),)),
    ("ch08", "check_conflict", (-4 / math.sqrt(80), True)),  # g1 . g2 = -4, |g1| = 4, |g2| = sqrt(5)
    ("ch08", "check_mgda_direction", ([16 / 29, 40 / 29],)),
    ("ch09", "check_delta_m", ((10 / 3 - 20) / 2,)),
    ("ch09", "check_paired_interval", (2.5 / 3, 4.302653 * np.std([1.1, 0.8, 0.6], ddof=1) / math.sqrt(3), False)),
    ("ch10", "check_affinity", (-0.05, 0.10)),
    ("ch10", "check_grouping", ([[0, 1], [2, 3]],)),
    ("ch11", "check_reptile_step", ((0.1, 0.1),)),
    ("ch12", "check_mean_iou", (13 / 18,)),
    ("ch13", "check_replica_direction", ([0.4, 0.8],)),
    ("ch13", "check_scaled_run", (256, 0.04)),
    ("ch14", "check_hard_sharing_delta_m", (100 * np.mean([-0.016 / 0.918, -0.030 / 0.930, -0.037 / 0.794]),)),
    ("ch14", "check_false_alarms", (1.2, 1 - sum(math.comb(24, k) * 0.05**k * 0.95 ** (24 - k) for k in range(3)))),
    ("ch14", "check_claims", ({"a": False, "b": True, "c": True, "d": False, "e": False},)),
]

IDS = [f"{m}.{c}" for m, c, _ in CORRECT]


def _checker(module: str, name: str):
    return getattr(importlib.import_module(f"mtl_course.exercises.{module}"), name)


def _numeric(value) -> bool:
    return not isinstance(value, (bool, str, dict)) and grading.as_array(value) is not None


def _as(value, kind: str):
    """``value`` converted to one of the forms a reader may type; non-numbers unchanged."""
    if not _numeric(value):
        return value
    array = np.asarray(value, dtype=np.float64)
    if kind == "numpy":
        return array
    if kind == "float32":
        return array.astype(np.float32)
    if kind == "torch_grad":
        return torch.tensor(array, requires_grad=True)
    if kind == "torch32":
        return torch.tensor(array, dtype=torch.float32)
    if kind == "one_element":  # scalars as [x]
        return array.reshape(1) if array.ndim == 0 else array
    if kind == "tf":
        import tensorflow as tf

        import mtl_course.tf  # noqa: F401

        return tf.constant(array)
    raise ValueError(kind)


@pytest.mark.parametrize("module, name, args", CORRECT, ids=IDS)
@pytest.mark.parametrize("kind", ["python", "numpy", "float32", "torch_grad", "torch32", "one_element", "tf"])
def test_every_checker_accepts_its_answer_in_every_form(module, name, args, kind, capsys):
    converted = args if kind == "python" else tuple(_as(a, kind) for a in args)
    assert _checker(module, name)(*converted) is True, _out(capsys)
    lines = _out(capsys).splitlines()
    assert lines[0].startswith("Correct: ")
    assert all(len(line) <= grading.WIDTH for line in lines)


@pytest.mark.parametrize("module, name, args", CORRECT, ids=IDS)
def test_every_checker_answers_the_placeholder_without_an_error(module, name, args, capsys):
    assert _checker(module, name)(*([...] * len(args))) is False
    out = _out(capsys)
    assert out.startswith("Not answered yet: ") and "Traceback" not in out


@pytest.mark.parametrize("module, name, args", CORRECT, ids=IDS)
def test_every_checker_rejects_garbage_with_a_message(module, name, args, capsys):
    for garbage in ("text", None, float("nan"), [1.0, "x"], object()):
        assert _checker(module, name)(*([garbage] * len(args))) is False
        out = _out(capsys)
        assert out.startswith("Not yet: ")
        assert all(len(line) <= grading.WIDTH for line in out.splitlines())


@pytest.mark.parametrize("module, name, args", CORRECT, ids=IDS)
def test_no_success_message_is_printed_for_a_wrong_numeric_answer(module, name, args, capsys):
    shifted = tuple(grading.as_array(a) * 1.37 + 0.11 if _numeric(a) else a for a in args)
    if all(not _numeric(a) for a in args):
        pytest.skip("no numeric argument to perturb")
    assert _checker(module, name)(*shifted) is False
    assert _out(capsys).startswith("Not yet: ")
