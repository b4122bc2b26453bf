"""Tests of the chapter 7 exercise checkers: right answers pass, wrong ones get a clear message."""

from __future__ import annotations

import numpy as np

from mtl_course.core.weighting import dwa_weights, gradnorm_gradient
from mtl_course.exercises import ch07


def test_reference_answers_by_hand():
    # GradNorm, three tasks: loss ratios (0.4, 0.25, 0.15), mean 0.8/3, so r = (1.5, 0.9375, 0.5625);
    # G = w n = (3.6, 2.4, 1.2), mean 2.4, targets 2.4 r^1.5; signs of G - target (-, +, +);
    # w - 0.1 sign n = (1.5, 0.2, 1.1), renormalised to sum 3.
    s = {k: np.array(v) if isinstance(v, tuple) else v for k, v in ch07.GRADNORM_SETTING.items()}
    r, targets, new = ch07.gradnorm_exercise_step(s["weights"], s["grad_norms"], s["losses"],
                                                  s["initial_losses"], s["alpha"], s["lr"])
    np.testing.assert_allclose(r, [1.5, 0.9375, 0.5625])
    np.testing.assert_allclose(targets, 2.4 * np.array([1.5, 0.9375, 0.5625]) ** 1.5)
    np.testing.assert_allclose(new, 3 * np.array([1.5, 0.2, 1.1]) / 2.8)
    # the package's gradient of L_grad gives the same plain step (the package then applies Adam)
    grad = gradnorm_gradient(s["weights"], s["grad_norms"], s["losses"], s["initial_losses"], s["alpha"])
    raw = s["weights"] - s["lr"] * grad
    np.testing.assert_allclose(3 * raw / raw.sum(), new)
    # DWA: r = (0.5, 0.9), w = 2 softmax(r / 2)
    e = np.exp([0.25, 0.45])
    np.testing.assert_allclose(dwa_weights(np.array(ch07.DWA_SETTING["loss_history"]), 2.0), 2 * e / e.sum())


def test_gradnorm_numbers_separate_the_common_mistakes():
    """The old setting gave the same answer for alpha 0, 1 and 3; the new one gives a different
    answer for every mistake the checker names (issue 18)."""
    s = {k: np.array(v) if isinstance(v, tuple) else v for k, v in ch07.GRADNORM_SETTING.items()}
    args = (s["weights"], s["grad_norms"], s["losses"], s["initial_losses"])
    finals = [ch07.gradnorm_exercise_step(*args, alpha, s["lr"])[2] for alpha in (0.0, 1.0, 1.5)]
    for i in range(len(finals)):
        for j in range(i + 1, len(finals)):
            assert np.abs(finals[i] - finals[j]).max() > 0.05


def test_check_uncertainty_optimum(capsys):
    assert ch07.check_uncertainty_optimum([0.5, 4.0], [1.0, 0.25])
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert not ch07.check_uncertainty_optimum([0.5, 2.0], [1.0, 0.25])  # regression form for both
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Not yet") and "moves its optimum" in out
    assert not ch07.check_uncertainty_optimum([0.5, 4.0], [2.0, 0.25])  # forgot c = 1/2
    assert "c / sigma^2" in " ".join(capsys.readouterr().out.split())
    assert not ch07.check_uncertainty_optimum([1.0, 1.0], [1.0, 1.0])
    assert "derivative" in " ".join(capsys.readouterr().out.split())
    assert not ch07.check_uncertainty_optimum("small", [1.0, 0.25])
    assert "2 finite numbers" in " ".join(capsys.readouterr().out.split())
    assert not ch07.check_uncertainty_optimum([0.5, float("nan")], [1.0, 0.25])
    assert not ch07.check_uncertainty_optimum([0.5, 4.0], [1.0])


def test_check_gradnorm_step(capsys):
    s = {k: np.array(v) if isinstance(v, tuple) else v for k, v in ch07.GRADNORM_SETTING.items()}
    r, t, new = ch07.gradnorm_exercise_step(s["weights"], s["grad_norms"], s["losses"], s["initial_losses"],
                                            s["alpha"], s["lr"])
    out = lambda: " ".join(capsys.readouterr().out.split())  # noqa: E731
    assert ch07.check_gradnorm_step(r, t, new)
    assert out().startswith("Correct")
    assert not ch07.check_gradnorm_step(s["losses"] / s["initial_losses"], t, new)
    assert "divide each loss ratio" in out()
    assert not ch07.check_gradnorm_step(r, np.full(3, 2.4), new)  # alpha = 0
    assert "alpha = 0" in out()
    assert not ch07.check_gradnorm_step(r, 2.4 * r, new)  # alpha = 1
    assert "alpha = 1;" in out()
    assert not ch07.check_gradnorm_step(r, s["grad_norms"].mean() * r**1.5, new)  # mean of n_i
    assert "not over the n_i" in out()
    G = s["weights"] * s["grad_norms"]
    unnormalised = s["weights"] - s["lr"] * np.sign(G - t) * s["grad_norms"]
    assert not ch07.check_gradnorm_step(r, t, unnormalised)
    assert "renormalisation" in out()
    flipped = s["weights"] + s["lr"] * np.sign(G - t) * s["grad_norms"]
    assert not ch07.check_gradnorm_step(r, t, 3 * flipped / flipped.sum())
    assert "against the gradient" in out()
    assert not ch07.check_gradnorm_step(r, t, np.round(new, 2))
    assert "give more digits" in out()
    assert not ch07.check_gradnorm_step(r, t, [1.0, 1.0, 1.0])
    assert "the weight of task" in out()
    assert not ch07.check_gradnorm_step(r, t, None)
    assert "3 finite numbers" in out()
    assert not ch07.check_gradnorm_step(..., ..., ...)
    assert out().startswith("Not answered yet")


def test_check_dwa_weights(capsys):
    assert ch07.check_dwa_weights([0.9003, 1.0997])
    assert " ".join(capsys.readouterr().out.split()).startswith("Correct")
    assert not ch07.check_dwa_weights([0.4502, 0.5498])  # softmax without the factor T
    assert "multiply the softmax by T" in " ".join(capsys.readouterr().out.split())
    assert not ch07.check_dwa_weights([1.2186, 0.7814])  # ratio upside down
    assert "L_i(k-1) / L_i(k-2)" in " ".join(capsys.readouterr().out.split())
    assert not ch07.check_dwa_weights([1.0, 1.0])
    assert "exp(r_i / tau)" in " ".join(capsys.readouterr().out.split())
    assert not ch07.check_dwa_weights([True, 1.0])
    assert "2 finite numbers" in " ".join(capsys.readouterr().out.split())
