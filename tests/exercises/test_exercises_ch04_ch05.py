"""The exercise checkers of chapters 4 and 5: right answers pass, wrong ones get a hint."""

import numpy as np
import pytest
import torch
from torch import nn

from mtl_course import torch as mtl
from mtl_course.chapters.ch04_hard_sharing import build_sharing_model
from mtl_course.exercises import ch04, ch05
from mtl_course.metrics import count_parameters


def test_parameter_counts_right_and_wrong(capsys):
    # trunk (128 + 1) 48 = 6192; heads (48 + 1) 16 + (16 + 1) C: 954 for 10 classes, 818 for 2
    hard, separate = 6192 + 2 * 954 + 818, 3 * 6192 + 2 * 954 + 818
    assert ch04.check_parameter_counts(hard, separate)
    assert "Correct" in " ".join(capsys.readouterr().out.split())
    assert not ch04.check_parameter_counts(hard, hard)
    assert "own trunk" in " ".join(capsys.readouterr().out.split())
    assert not ch04.check_parameter_counts(hard - 3 * 16 - 22 - 48, separate)
    assert "biases" in " ".join(capsys.readouterr().out.split())
    assert not ch04.check_parameter_counts(12.5, separate)
    assert "whole number" in " ".join(capsys.readouterr().out.split())


def test_parameter_count_answer_matches_a_real_model():
    setting = ch04.COUNT_SETTING
    model = build_sharing_model(mtl, "hard", setting["d_in"], setting["hidden"], setting["outputs"],
                                head_hidden=setting["head_hidden"])
    assert count_parameters(model) == 6192 + 2 * 954 + 818


def test_accumulated_loop_right_and_wrong(capsys):
    assert ch04.check_accumulated_loop([4, 3, 2, 1])
    assert not ch04.check_accumulated_loop([1, 2, 3, 4])
    assert "reversed" in " ".join(capsys.readouterr().out.split())
    assert not ch04.check_accumulated_loop([1, 1, 1, 1])
    assert not ch04.check_accumulated_loop("4321")
    assert not ch04.check_accumulated_loop([4, 3, 2])


def test_accumulated_loop_answer_matches_autograd():
    # the buggy loop of chapter 4 on four tasks with one shared scalar: L_t = c_t * w
    w = nn.Parameter(torch.tensor(1.0))
    coefficients = [1.0, 10.0, 100.0, 1000.0]
    total = 0
    for c in coefficients:
        total = total + c * w
        total.backward(retain_graph=True)
    assert w.grad.item() == pytest.approx(sum(m * c for m, c in zip([4, 3, 2, 1], coefficients)))


def test_penalty_gradient_right_and_wrong(capsys):
    assert ch05.check_penalty_gradient([1.0, -2.0])
    assert not ch05.check_penalty_gradient([0.5, -1.0])
    assert "factor 2" in " ".join(capsys.readouterr().out.split())
    assert not ch05.check_penalty_gradient([-1.0, 2.0])
    assert "sign" in " ".join(capsys.readouterr().out.split())
    assert not ch05.check_penalty_gradient([1.0, -2.0, 0.0])
    assert not ch05.check_penalty_gradient("ab")
    assert not ch05.check_penalty_gradient([np.nan, 1.0])


def test_l2_penalty_gradient_matches_soft_sharing_autograd():
    theta = np.random.default_rng(0).standard_normal((3, 4))
    towers = {}
    for t, name in enumerate("abc"):
        layer = nn.Linear(4, 1, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(theta[t]).float().reshape(1, 4))
        towers[name] = layer
    model = mtl.SoftSharing(towers, coupling="l2", strength=0.3)
    model.penalty().backward()
    autograd = np.stack([towers[n].weight.grad.numpy().ravel() for n in "abc"])
    np.testing.assert_allclose(ch05.l2_penalty_gradient(theta, 0.3), autograd, rtol=1e-5, atol=1e-6)


def test_trace_norms_right_and_wrong(capsys):
    assert ch05.check_trace_norms(np.sqrt(2), np.sqrt(5), 2.0)
    assert not ch05.check_trace_norms(np.sqrt(2), np.sqrt(5), np.sqrt(2))
    assert "Frobenius" in " ".join(capsys.readouterr().out.split())
    assert not ch05.check_trace_norms(1.0, np.sqrt(5), 2.0)
    assert not ch05.check_trace_norms("two", 1.0, 1.0)
    assert "finite number" in " ".join(capsys.readouterr().out.split())
