"""Tests of the chapter 7 exercise checkers: right answers pass, wrong ones get a clear message."""

from __future__ import annotations

import numpy as np

from mtl_course.core.weighting import dwa_weights, gradnorm_update
from mtl_course.exercises import ch07


def test_reference_answers_by_hand():
    # GradNorm: r = (0.5, 0.9) / 0.7, G = (2, 0.5), targets 1.25 r = (0.893, 1.607):
    # task 1 is above its target, task 2 below; w = (1 - 0.2, 1 + 0.05) = (0.8, 1.05), renormalised to sum 2.
    s = ch07.GRADNORM_SETTING
    new = gradnorm_update(np.array(s["weights"]), np.array(s["grad_norms"]), np.array(s["losses"]),
                          np.array(s["initial_losses"]), s["alpha"], s["lr"])
    np.testing.assert_allclose(new, 2 * np.array([0.8, 1.05]) / 1.85)
    # DWA: r = (0.5, 0.9), w = 2 softmax(r / 2)
    e = np.exp([0.25, 0.45])
    np.testing.assert_allclose(dwa_weights(np.array(ch07.DWA_SETTING["loss_history"]), 2.0), 2 * e / e.sum())


def test_check_uncertainty_optimum(capsys):
    assert ch07.check_uncertainty_optimum([0.5, 4.0], [1.0, 0.25])
    assert capsys.readouterr().out.startswith("Correct")
    assert not ch07.check_uncertainty_optimum([0.5, 2.0], [1.0, 0.25])  # regression form for both
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and "sigma^2 = 2 L" in out
    assert not ch07.check_uncertainty_optimum([0.5, 4.0], [2.0, 0.25])  # forgot c = 1/2
    assert "c / sigma^2" in capsys.readouterr().out
    assert not ch07.check_uncertainty_optimum([1.0, 1.0], [1.0, 1.0])
    assert "derivative" in capsys.readouterr().out
    assert not ch07.check_uncertainty_optimum("small", [1.0, 0.25])
    assert "2 finite numbers" in capsys.readouterr().out
    assert not ch07.check_uncertainty_optimum([0.5, float("nan")], [1.0, 0.25])
    assert not ch07.check_uncertainty_optimum([0.5, 4.0], [1.0])


def test_check_gradnorm_step(capsys):
    assert ch07.check_gradnorm_step([0.8649, 1.1351])
    assert capsys.readouterr().out.startswith("Correct")
    assert not ch07.check_gradnorm_step([0.8, 1.05])  # not renormalised
    assert "renormalisation" in capsys.readouterr().out
    assert not ch07.check_gradnorm_step([1.2, 1.2])
    assert "sum to the number of tasks" in capsys.readouterr().out
    assert not ch07.check_gradnorm_step([1.1351, 0.8649])  # signs swapped
    assert "sign(G_i - target_i)" in capsys.readouterr().out
    assert not ch07.check_gradnorm_step(None)
    assert "2 finite numbers" in capsys.readouterr().out


def test_check_dwa_weights(capsys):
    assert ch07.check_dwa_weights([0.9003, 1.0997])
    assert capsys.readouterr().out.startswith("Correct")
    assert not ch07.check_dwa_weights([0.4502, 0.5498])  # softmax without the factor K
    assert "multiply the softmax by K" in capsys.readouterr().out
    assert not ch07.check_dwa_weights([1.2186, 0.7814])  # ratio upside down
    assert "L_k(t-1) / L_k(t-2)" in capsys.readouterr().out
    assert not ch07.check_dwa_weights([1.0, 1.0])
    assert "exp(r_k / T)" in capsys.readouterr().out
    assert not ch07.check_dwa_weights([True, 1.0])
    assert "2 finite numbers" in capsys.readouterr().out
