"""The graded code exercises: each checker runs a reader's function on hidden inputs.

For every such checker: the package's reference (wrapped so that it takes the
framework's tensors) passes in numpy, torch and TensorFlow; each typical wrong
implementation fails with its specific message and the first failing input; the
placeholder, a stub that raises NotImplementedError, a function that raises and
one that returns the wrong shape each get a clear message and no traceback.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from mtl_course.exercises import grading


def _to_numpy(value):
    if isinstance(value, (list, tuple)):
        return [_to_numpy(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    if hasattr(value, "detach"):
        return value.detach().numpy()
    if hasattr(value, "numpy"):
        return value.numpy()
    return value


def _in_framework(fn):
    """``fn`` (numpy in, numpy out) as a reader's function that takes and returns the framework's arrays."""
    def wrapped(*args):
        return fn(*[_to_numpy(a) for a in args])
    return wrapped


def _m(module: str):
    return importlib.import_module(f"mtl_course.exercises.{module}")


# (module, checker, frameworks it accepts, reference, [(wrong implementation, words of its hint)])
GRADED = [
    ("ch01", "check_pooled_least_squares", ("numpy", "torch", "tf"), lambda: _m("ch01").pooled_least_squares,
     [(lambda: _m("ch01")._mean_of_task_fits, "mean of the tasks' own least-squares fits")]),
    ("ch02", "check_non_dominated", ("numpy", "torch"), lambda: _m("ch02").non_dominated_mask,
     [(lambda: _m("ch02")._weak_mask, "no worse in every loss"),
      (lambda: _m("ch02")._drops_duplicates, "Two equal points do not dominate each other")]),
    ("ch03", "check_prox_l21_function", ("numpy",), lambda: _m("ch03").prox_l21,
     [(lambda: _m("ch03")._row_wise, "grouped by rows"), (lambda: _m("ch03")._elementwise, "entry-wise")]),
    ("ch04", "check_parameter_count_function", ("numpy",), lambda: _m("ch04").hard_sharing_parameter_count,
     [(lambda: _m("ch04")._no_biases, "biases"), (lambda: _m("ch04")._one_head, "one head per task")]),
    ("ch04", "check_multitask_loss", ("torch", "tf", "numpy"), lambda: _m("ch04").multitask_loss,
     [(lambda: _m("ch04")._unweighted, "its weight"), (lambda: _m("ch04")._summed_over_batch, "over the batch"),
      (lambda: _m("ch04")._probabilities_as_logits, "from_logits=True")]),
    ("ch05", "check_l2_coupling", ("torch", "tf", "numpy"), lambda: _m("ch05").l2_coupling,
     [(lambda: _m("ch05")._ordered_pairs, "counts once"), (lambda: _m("ch05")._not_squared, "squared distance"),
      (lambda: _m("ch05")._adjacent_only, "not only neighbours"), (lambda: _m("ch05")._to_mean, "mean tower")]),
    ("ch06", "check_mmoe_gate", ("torch", "tf", "numpy"), lambda: _m("ch06").mmoe_gate,
     [(lambda: _m("ch06")._softmax_over_batch, "not over the batch"),
      (lambda: _m("ch06")._no_softmax, "Apply the softmax")]),
    ("ch07", "check_dwa_function", ("numpy", "torch"), lambda: _m("ch07").dwa_weights,
     [(lambda: _m("ch07")._dwa_no_k, "multiply the softmax by T"),
      (lambda: _m("ch07")._dwa_flipped, "latest epoch over the one before")]),
    ("ch08", "check_mgda_two", ("torch", "tf", "numpy"), lambda: _m("ch08").mgda_two,
     [(lambda: _m("ch08")._unclipped, "Clip gamma"), (lambda: _m("ch08")._swapped, "multiplies g1"),
      (lambda: _m("ch08")._mean, "mean gradient")]),
    ("ch09", "check_paired_interval_function", ("numpy",), lambda: _m("ch09").paired_interval,
     [(lambda: _m("ch09")._z_interval, "Student's t"), (lambda: _m("ch09")._ddof0_interval, "ddof=1"),
      (lambda: _m("ch09")._unpaired_interval, "Pair by seed")]),
    ("ch10", "check_affinity_function", ("numpy",), lambda: _m("ch10").lookahead_affinity,
     [(lambda: (lambda b, a: _m("ch10").lookahead_affinity(b, a).T), "transposed"),
      (lambda: (lambda b, a: -_m("ch10").lookahead_affinity(b, a)), "positive when the step helps")]),
    ("ch11", "check_reptile_function", ("numpy", "torch"), lambda: _m("ch11").reptile_outer_step,
     [(lambda: (lambda t, a, e: np.asarray(a).mean(axis=0)), "fraction outer_lr"),
      (lambda: (lambda t, a, e: t + e * (np.asarray(a) - t).sum(axis=0)), "you summed")]),
    ("ch12", "check_mean_iou_function", ("numpy",), lambda: _m("ch12").mean_iou,
     [(lambda: _m("ch12")._pixel_accuracy, "pixel accuracy"),
      (lambda: _m("ch12")._absent_as_zero, "neither predicted nor present")]),
    ("ch13", "check_replica_direction_function", ("numpy", "torch"), lambda: _m("ch13").replica_direction,
     [(lambda: (lambda Js: _m("ch13").aggregate_then_average([np.asarray(J) for J in Js],
                                                               _m("ch13").mgda_weights)),
       "average the Jacobians first")]),
    ("ch14", "check_delta_m_function", ("numpy",), lambda: _m("ch14").delta_m,
     [(lambda: _m("ch14")._no_sign_flip, "Flip the sign"), (lambda: _m("ch14")._as_fraction, "in percent")]),
]
IDS = [f"{m}.{c}" for m, c, *_ in GRADED]


def _call(module, checker, fn, framework):
    check = getattr(_m(module), checker)
    if framework == "numpy" and "framework" not in check.__code__.co_varnames:
        return check(fn)
    return check(fn, framework=framework)


@pytest.mark.parametrize("module, checker, frameworks, reference, mistakes", GRADED, ids=IDS)
def test_the_reference_passes_in_every_framework(module, checker, frameworks, reference, mistakes, capsys):
    for framework in frameworks:
        assert _call(module, checker, _in_framework(reference()), framework) is True, capsys.readouterr().out
        out = capsys.readouterr().out
        assert out.startswith("Correct: ") and all(len(line) <= grading.WIDTH for line in out.splitlines())


@pytest.mark.parametrize("module, checker, frameworks, reference, mistakes", GRADED, ids=IDS)
def test_each_typical_mistake_is_named(module, checker, frameworks, reference, mistakes, capsys):
    for wrong, words in mistakes:
        assert _call(module, checker, _in_framework(wrong()), frameworks[0]) is False
        out = " ".join(capsys.readouterr().out.split())
        assert out.startswith("Not yet: ") and "hidden case" in out and words in out, out


@pytest.mark.parametrize("module, checker, frameworks, reference, mistakes", GRADED, ids=IDS)
def test_placeholder_stub_crash_and_shape_get_clear_messages(module, checker, frameworks, reference, mistakes,
                                                             capsys):
    def stub(*args):
        raise NotImplementedError

    def crashes(*args):
        raise ZeroDivisionError("division by zero")

    def wrong_shape(*args):
        return np.zeros(17)

    assert _call(module, checker, ..., frameworks[0]) is False
    assert capsys.readouterr().out.startswith("Not answered yet: ")
    assert _call(module, checker, stub, frameworks[0]) is False
    assert capsys.readouterr().out.startswith("Not answered yet: ")
    assert _call(module, checker, crashes, frameworks[0]) is False
    out = " ".join(capsys.readouterr().out.split())
    assert "raised ZeroDivisionError: division by zero on hidden case 1" in out
    assert _call(module, checker, wrong_shape, frameworks[0]) is False
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet: ") and ("shape" in out or "finite number" in out)
    assert _call(module, checker, "not a function", frameworks[0]) is False
    assert "(a function)" in " ".join(capsys.readouterr().out.split())


def test_a_nearly_right_function_fails_on_the_case_that_separates_it(capsys):
    """The MGDA checker's hidden cases include gamma clipped at 1: a version without the clip passes
    the first five cases and fails there, and the message names that input."""
    from mtl_course.exercises import ch08

    assert ch08.check_mgda_two(_in_framework(ch08._unclipped), framework="numpy") is False
    out = " ".join(capsys.readouterr().out.split())
    assert "hidden case 6 of 7" in out and "g1 = [1, 0.1, 0]" in out


def test_hidden_cases_are_fixed_by_their_seed():
    from mtl_course.exercises import ch05

    first, second = ch05._coupling_cases(), ch05._coupling_cases()
    for (a,), (b,) in zip(first, second):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- sweep tables (chapter 5 seeds, chapter 7 alpha)


def test_seed_table_checks_the_verdict_against_the_table(capsys):
    from mtl_course.exercises import ch05

    clear = {1.0: [0.90, 0.95, 0.92, 0.91, 0.93, 0.94], 0.5: [1.0] * 6, 0.0: [1.20, 1.25, 1.22, 1.21, 1.30, 1.19]}
    noisy = {1.0: [0.9, 1.3, 0.8, 1.2, 1.0, 0.7], 0.5: [1.0] * 6, 0.0: [1.0, 1.1, 0.9, 1.3, 0.8, 1.0]}
    assert ch05.check_seed_table(clear, True) is True
    assert ch05.check_seed_table(noisy, False) is True
    capsys.readouterr()
    assert ch05.check_seed_table(clear, False) is False
    assert ch05.check_seed_table(noisy, True) is False  # the means differ, the paired interval contains 0
    assert "does not follow from your table" in " ".join(capsys.readouterr().out.split())
    assert ch05.check_seed_table({1.0: [1.0] * 3, 0.5: [1.0] * 3, 0.0: [1.0] * 3}, False) is False
    assert "at least 6 seeds" in capsys.readouterr().out
    assert ch05.check_seed_table({1.0: [1.0] * 6, 0.0: [1.0] * 6}, False) is False
    assert "no row for [0.5]" in capsys.readouterr().out
    assert ch05.check_seed_table({1.0: [1.0] * 6, 0.5: [1.0] * 5, 0.0: [1.0] * 6}, False) is False
    assert "same seeds" in capsys.readouterr().out
    assert ch05.check_seed_table(..., ...) is False
    assert capsys.readouterr().out.startswith("Not answered yet")


def test_alpha_table_checks_the_verdict_against_the_table(capsys):
    import torch

    from mtl_course.exercises import ch07

    lower = {0: [0.80, 0.70, 0.90], 1.5: [0.7, 0.7, 0.8], 3: torch.tensor([0.60, 0.50, 0.70])}
    unclear = {0: [0.8, 0.7, 0.9], 1.5: [0.7, 0.7, 0.8], 3: [0.5, 0.6, 0.4]}
    assert ch07.check_alpha_table(lower, True) is True
    assert ch07.check_alpha_table(unclear, False) is True
    capsys.readouterr()
    assert ch07.check_alpha_table(unclear, True) is False
    assert "does not match your table" in " ".join(capsys.readouterr().out.split())
    assert ch07.check_alpha_table([0.8, 0.7], True) is False
    assert "give a dict" in capsys.readouterr().out
