"""Tests of the mtl_course.data generators: determinism, shapes, the documented statistics."""

import numpy as np
import pytest

from mtl_course.data.digits import multi_digits
from mtl_course.data.recsys import click_conversion
from mtl_course.data.synthetic import (
    gradnorm_toy,
    mmoe_synthetic,
    related_regression,
    shared_subspace_regression,
)
from mtl_course.data.toy import TwoObjectiveToy, toy_two_objective
from mtl_course.data.types import MultiTaskSplit, Splits


def assert_same_split(a: MultiTaskSplit, b: MultiTaskSplit) -> None:
    assert np.array_equal(a.x, b.x) and a.task_names == b.task_names
    for name in a.task_names:
        assert np.array_equal(a.y[name], b.y[name])

# ---------------------------------------------------------------- related_regression


def test_related_regression_shapes_and_determinism():
    a = related_regression(num_tasks=3, n_per_task=7, dim=4, seed=1)
    b = related_regression(num_tasks=3, n_per_task=7, dim=4, seed=1)
    c = related_regression(num_tasks=3, n_per_task=7, dim=4, seed=2)
    assert a.weights.shape == (3, 4) and a.shared.shape == (4,)
    assert [x.shape for x in a.X] == [(7, 4)] * 3 and [y.shape for y in a.y] == [(7,)] * 3
    assert a.num_tasks == 3 and a.dim == 4
    for xa, xb, ya, yb in zip(a.X, b.X, a.y, b.y):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert np.array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)


def test_related_regression_targets_follow_the_model():
    data = related_regression(num_tasks=2, n_per_task=20, dim=3, noise=0.0, seed=0)
    for x, y, w in zip(data.X, data.y, data.weights):
        np.testing.assert_allclose(y, x @ w)
    noisy = related_regression(num_tasks=2, n_per_task=4000, dim=3, noise=0.5, seed=0)
    residual = noisy.y[0] - noisy.X[0] @ noisy.weights[0]
    assert np.std(residual) == pytest.approx(0.5, rel=0.05)


def test_related_regression_extremes():
    same = related_regression(num_tasks=4, relatedness=1.0, seed=3)
    np.testing.assert_array_equal(same.weights, np.broadcast_to(same.shared, (4, 10)))
    independent = related_regression(num_tasks=4, relatedness=0.0, seed=3)
    assert np.all(independent.shared == 0.0)


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.8])
def test_related_regression_weight_correlation_is_relatedness(rho):
    # pool coordinates of many task pairs: the sample correlation estimates rho
    data = related_regression(num_tasks=2000, dim=50, relatedness=rho, n_per_task=1, seed=4)
    w = data.weights
    corr = np.corrcoef(w[0::2].ravel(), w[1::2].ravel())[0, 1]
    assert corr == pytest.approx(rho, abs=0.03)
    # E||w_t||^2 = ||shared||^2 + (1 - rho); over the draw of w0 it is 1
    expected = np.sum(data.shared**2) + (1 - rho)
    assert np.mean(np.sum(w**2, axis=1)) == pytest.approx(expected, abs=0.03)


def test_related_regression_sample_draws_fresh_data_from_same_tasks():
    data = related_regression(num_tasks=2, n_per_task=10, dim=3, noise=0.0, seed=0)
    X, y = data.sample(5, seed=9)
    X2, y2 = data.sample(5, seed=9)
    assert [x.shape for x in X] == [(5, 3)] * 2
    assert all(np.array_equal(a, b) for a, b in zip(X, X2))
    for x, t, w in zip(X, y, data.weights):
        np.testing.assert_allclose(t, x @ w)
    assert not np.array_equal(X[0], data.X[0][:5])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_tasks": 0}, ValueError, "num_tasks"),
        ({"n_per_task": 2.5}, TypeError, "n_per_task"),
        ({"dim": True}, TypeError, "dim"),
        ({"relatedness": 1.5}, ValueError, "relatedness"),
        ({"relatedness": float("nan")}, ValueError, "relatedness"),
        ({"noise": -0.1}, ValueError, "noise"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": None}, TypeError, "seed"),
    ],
)
def test_related_regression_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        related_regression(**kwargs)


# ---------------------------------------------------------------- mmoe_synthetic


def test_mmoe_synthetic_shapes_dtypes_determinism():
    a = mmoe_synthetic(n=50, dim=8, seed=3)
    assert a.x.shape == (50, 8) and a.x.dtype == np.float32
    assert a.task_names == ("task1", "task2")
    assert all(v.shape == (50,) and v.dtype == np.float32 for v in a.y.values())
    assert_same_split(a, mmoe_synthetic(n=50, dim=8, seed=3))
    assert not np.array_equal(a.x, mmoe_synthetic(n=50, dim=8, seed=4).x)


def test_mmoe_synthetic_label_correlation_increases_with_knob():
    ps = [-0.5, 0.0, 0.5, 0.9, 1.0]
    corr = []
    for p in ps:
        data = mmoe_synthetic(n=4000, dim=20, correlation=p, seed=0)
        corr.append(np.corrcoef(data.y["task1"], data.y["task2"])[0, 1])
    assert np.all(np.diff(corr) > 0), corr
    assert corr[-1] > 0.99  # p = 1: same function, only the noise differs
    assert abs(corr[1]) < 0.1  # p = 0: orthogonal directions, independent inputs


def test_mmoe_synthetic_without_sines_is_linear_with_cosine_p():
    # num_sin = 0 and no noise: y_i = w_i^T x, so corr(y1, y2) -> cos(w1, w2) = p
    data = mmoe_synthetic(n=20000, dim=10, correlation=0.5, num_sin=0, noise=0.0, seed=1)
    assert np.corrcoef(data.y["task1"], data.y["task2"])[0, 1] == pytest.approx(0.5, abs=0.02)
    assert np.std(data.y["task1"]) == pytest.approx(1.0, abs=0.02)  # ||w1|| = scale = 1


@pytest.mark.parametrize(
    "kwargs, match",
    [({"correlation": 1.1}, "correlation"), ({"dim": 1}, "dim"), ({"noise": -1.0}, "noise")],
)
def test_mmoe_synthetic_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mmoe_synthetic(n=10, **kwargs)


# ---------------------------------------------------------------- gradnorm_toy


def test_gradnorm_toy_shapes_scales_determinism():
    splits = gradnorm_toy(num_tasks=3, sigmas=[1.0, 10.0, 100.0], n=100, input_dim=20,
                          output_dim=5, seed=2)
    assert isinstance(splits, Splits)
    assert [len(s) for s in splits] == [60, 20, 20]
    train = splits.train
    assert train.x.shape == (60, 20) and train.x.dtype == np.float32
    assert train.task_names == ("t0", "t1", "t2")
    for name, sigma in zip(train.task_names, [1.0, 10.0, 100.0]):
        target = train.y[name]
        assert target.shape == (60, 5) and target.dtype == np.float32
        assert np.abs(target).max() <= sigma * (1 + 1e-6)
        assert np.abs(target).mean() > 0.8 * sigma  # tanh mostly saturated, as documented
    again = gradnorm_toy(num_tasks=3, sigmas=[1.0, 10.0, 100.0], n=100, input_dim=20,
                         output_dim=5, seed=2)
    for a, b in zip(splits, again):
        assert_same_split(a, b)


def test_gradnorm_toy_tasks_share_structure():
    # same B: sign patterns of two tasks agree far more often than chance (1/2)
    train = gradnorm_toy(num_tasks=2, n=200, seed=0).train
    agree = np.mean(np.sign(train.y["t0"]) == np.sign(train.y["t1"]))
    assert agree > 0.7
    default = gradnorm_toy(num_tasks=4, n=10, seed=0).train
    np.testing.assert_allclose(np.abs(default.y["t3"]).max(), 100.0, rtol=1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"sigmas": [1.0, 2.0]}, "shape"), ({"sigmas": [1.0, -2.0, 3.0]}, "positive"),
     ({"n": 2}, "n must be"), ({"num_tasks": 0}, "num_tasks")],
)
def test_gradnorm_toy_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gradnorm_toy(**{"num_tasks": 3, **kwargs})


# ---------------------------------------------------------------- two-objective toy


def test_toy_gradients_match_finite_differences():
    toy = toy_two_objective()
    rng = np.random.default_rng(0)
    points = rng.uniform(-10, 10, size=(300, 2))
    points = points[np.abs(points[:, 1]) > 1e-3]  # away from the kink at x2 = 0
    h = 1e-6
    numeric = np.stack(
        [(toy.losses(points + h * e) - toy.losses(points - h * e)) / (2 * h) for e in np.eye(2)],
        axis=-1,
    )
    np.testing.assert_allclose(toy.jacobian(points), numeric, rtol=1e-5, atol=1e-6)


def test_toy_values_by_hand_and_scale():
    toy = TwoObjectiveToy()
    # x = (0, -20): c1 = 0, c2 = tanh(10); q1 = q2 = (49 + 14.4) / 10 - 20
    expected = np.tanh(10.0) * ((49 + 14.4) / 10 - 20)
    np.testing.assert_allclose(toy.losses([0.0, -20.0]), [expected, expected])
    # x = (0, 20): c1 = tanh(10), g1 = log|-3.5 + tanh(20)| + 6, g2 = log|3.5 - tanh(20)| + 6
    t = np.tanh(20.0)
    np.testing.assert_allclose(
        toy.losses([0.0, 20.0]),
        np.tanh(10.0) * np.array([np.log(3.5 - t) + 6, np.log(3.5 - t) + 6]),
    )
    pts = np.random.default_rng(1).uniform(-9, 9, size=(4, 3, 2))
    scaled = toy_two_objective(scale=0.1)
    assert toy.losses(pts).shape == (4, 3, 2) and toy.jacobian(pts).shape == (4, 3, 2, 2)
    np.testing.assert_allclose(scaled.losses(pts)[..., 0], 0.1 * toy.losses(pts)[..., 0])
    np.testing.assert_allclose(scaled.losses(pts)[..., 1], toy.losses(pts)[..., 1])
    np.testing.assert_allclose(scaled.jacobian(pts)[..., 0, :], 0.1 * toy.jacobian(pts)[..., 0, :])


def test_toy_starts():
    np.testing.assert_array_equal(
        TwoObjectiveToy.cagrad_starts, [[-8.5, 7.5], [-8.5, -5.0], [9.0, 9.0]]
    )
    assert TwoObjectiveToy.nashmtl_starts.shape == (5, 2)
    assert [0.0, 0.0] in TwoObjectiveToy.nashmtl_starts.tolist()
    with pytest.raises(ValueError):
        TwoObjectiveToy.cagrad_starts[0, 0] = 1.0  # read-only


def test_toy_pareto_set_is_stationary_and_not_dominated():
    toy = toy_two_objective()
    pareto = toy.pareto_set(21)
    np.testing.assert_allclose(pareto[:, 0], np.linspace(-7, 7, 21))
    assert np.all((pareto[:, 1] > -8.5) & (pareto[:, 1] < -8.3))
    assert pareto[10, 1] == pytest.approx(-8.3552, abs=1e-3)  # value in the CAGrad code
    # interior points: the two gradients are anti-parallel
    J = toy.jacobian(pareto[1:-1])
    g1, g2 = J[:, 0], J[:, 1]
    cos = np.sum(g1 * g2, axis=1) / np.linalg.norm(g1, axis=1) / np.linalg.norm(g2, axis=1)
    np.testing.assert_allclose(cos, -1.0, atol=1e-8)
    # no point of a dense grid dominates a Pareto point
    grid = np.stack(np.meshgrid(np.linspace(-10, 10, 201), np.linspace(-10, 10, 201)), -1)
    f_grid = toy.losses(grid.reshape(-1, 2))
    for f in toy.losses(pareto):
        dominated = np.all(f_grid <= f, axis=1) & np.any(f_grid < f - 1e-9, axis=1)
        assert not dominated.any()
    # the scaled problem has the same Pareto set
    np.testing.assert_allclose(toy_two_objective(scale=0.1).pareto_set(21), pareto)


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 3)), [np.nan, 0.0]])
def test_toy_bad_points(bad):
    with pytest.raises(ValueError, match="points"):
        toy_two_objective().losses(bad)


def test_toy_bad_scale():
    with pytest.raises(ValueError, match="scale"):
        toy_two_objective(scale=0.0)


# ---------------------------------------------------------------- multi_digits


def test_multi_digits_shapes_labels_determinism():
    splits = multi_digits(seed=0, n_train=200, n_val=50, n_test=60)
    assert [len(s) for s in splits] == [200, 50, 60]
    for split in splits:
        assert split.x.shape[1:] == (8, 16) and split.x.dtype == np.float32
        assert split.x.min() >= 0.0 and split.x.max() <= 1.0
        assert split.task_names == ("left", "right", "parity")
        y = split.y
        assert all(v.dtype == np.int64 for v in y.values())
        assert set(np.unique(y["left"])) <= set(range(10))
        np.testing.assert_array_equal(y["parity"], (y["left"] + y["right"]) % 2)
    for a, b in zip(splits, multi_digits(seed=0, n_train=200, n_val=50, n_test=60)):
        assert_same_split(a, b)


def test_multi_digits_halves_are_labelled_source_images_from_disjoint_pools():
    from sklearn.datasets import load_digits

    from mtl_course.data.digits import _source_pools

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    pools = _source_pools(np.random.default_rng(5), len(images))
    assert sum(map(len, pools)) == len(images)
    assert len(np.unique(np.concatenate(pools))) == len(images)  # disjoint, complete

    splits = multi_digits(seed=5, n_train=100, n_val=40, n_test=40)
    for split, pool in zip(splits, pools):
        # every half is one of the pool's images, with that image's label
        flat = images[pool].reshape(len(pool), -1)
        for half, task in ((split.x[:, :, :8], "left"), (split.x[:, :, 8:], "right")):
            dist = ((half.reshape(len(half), 1, -1) - flat[None]) ** 2).sum(-1)
            nearest = dist.argmin(axis=1)
            np.testing.assert_array_equal(dist[np.arange(len(half)), nearest], 0.0)
            np.testing.assert_array_equal(digits.target[pool][nearest], split.y[task])


def test_multi_digits_overlap_layout():
    plain = multi_digits(seed=1, n_train=20, n_val=5, n_test=5)
    over = multi_digits(seed=1, n_train=20, n_val=5, n_test=5, overlap=True)
    np.testing.assert_array_equal(plain.train.y["left"], over.train.y["left"])
    left, right = plain.train.x[:, :, :8], plain.train.x[:, :, 8:]
    np.testing.assert_array_equal(over.train.x[:, :, 2:6], left[:, :, :4])
    np.testing.assert_array_equal(over.train.x[:, :, 6:10],
                                  np.maximum(left[:, :, 4:], right[:, :, :4]))
    np.testing.assert_array_equal(over.train.x[:, :, 14:], 0.0)


def test_multi_digits_bad_arguments():
    with pytest.raises(ValueError, match="n_val"):
        multi_digits(n_val=0)
    with pytest.raises(TypeError, match="overlap"):
        multi_digits(overlap="yes")


# ---------------------------------------------------------------- click_conversion


def test_click_conversion_labels_and_determinism():
    split, truth = click_conversion(n=3000, seed=0)
    assert split.x.shape == (3000, 16) and split.x.dtype == np.float32
    assert split.task_names == ("click", "conversion")
    click, conv = split.y["click"], split.y["conversion"]
    assert click.dtype == np.float32 and conv.dtype == np.float32
    assert set(np.unique(click)) == {0.0, 1.0}
    assert np.all(conv[click == 0] == 0)  # no conversion without a click
    np.testing.assert_array_equal(conv, click * truth.would_convert)
    np.testing.assert_allclose(truth.p_click_and_conversion,
                               truth.p_click * truth.p_conversion_given_click)
    split2, truth2 = click_conversion(n=3000, seed=0)
    assert_same_split(split, split2)
    np.testing.assert_array_equal(truth.p_click, truth2.p_click)


def test_click_conversion_labels_follow_the_true_probabilities():
    split, truth = click_conversion(n=20000, seed=1)
    assert split.y["click"].mean() == pytest.approx(truth.p_click.mean(), abs=0.01)
    assert split.y["conversion"].mean() == pytest.approx(
        truth.p_click_and_conversion.mean(), abs=0.01
    )


def test_click_conversion_has_sample_selection_bias():
    split, truth = click_conversion(n=20000, seed=0)
    clicked = split.y["click"] == 1
    cvr_clicked = split.y["conversion"][clicked].mean()
    cvr_entire = truth.p_conversion_given_click.mean()
    assert cvr_clicked > cvr_entire + 0.08  # clicked impressions are not a random sample
    # and without shared directions the bias vanishes
    split0, truth0 = click_conversion(n=20000, seed=0, overlap=0.0)
    clicked0 = split0.y["click"] == 1
    assert split0.y["conversion"][clicked0].mean() == pytest.approx(
        truth0.p_conversion_given_click.mean(), abs=0.03
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [({"overlap": 2.0}, "overlap"), ({"n": 0}, "n must be"), ({"signal": -1.0}, "signal"),
     ({"click_bias": float("inf")}, "click_bias")],
)
def test_click_conversion_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        click_conversion(**kwargs)


# ------------------------------------------- issue 14, item 16: scales that overflow float32


def test_generators_reject_scales_whose_outputs_overflow_float32():
    """Before: mmoe_synthetic(scale=1e200) and gradnorm_toy(sigmas=[1e39, 1]) returned inf targets."""
    from mtl_course.data.groups import grouped_regression

    with pytest.raises(ValueError, match=r"scale=1e\+200 .* targets of task1 overflow float32"):
        mmoe_synthetic(n=10, scale=1e200)
    with pytest.raises(ValueError, match=r"sigma=1e\+39, the targets of t0 overflow float32"):
        gradnorm_toy(num_tasks=2, sigmas=[1e39, 1.0], n=10, input_dim=3, output_dim=2)
    with pytest.raises(ValueError, match=r"noise=1e\+39 .* targets of a0 overflow float32"):
        grouped_regression((1,), n_train=4, n_val=4, n_test=4, noise=1e39)
    # just inside float32's range is fine, and exactly as before
    data = gradnorm_toy(num_tasks=2, sigmas=[1e38, 1.0], n=10, input_dim=3, output_dim=2)
    assert np.all(np.isfinite(data.train.y["t0"])) and np.abs(data.train.y["t0"]).max() > 1e37
    assert np.all(np.isfinite(mmoe_synthetic(n=10, scale=1e30).y["task1"]))


def test_grouped_regression_needs_a_sequence_of_group_sizes():
    """Before: grouped_regression(3) failed with "'int' object is not iterable"."""
    from mtl_course.data.groups import grouped_regression

    with pytest.raises(TypeError, match=r"group_sizes must be a sequence .* e\.g\. \(3, 3\), got 3"):
        grouped_regression(3)
    assert len(grouped_regression((3,), n_train=4, n_val=4, n_test=4).groups) == 1


# -------------------------------------------------------- shared_subspace_regression


def test_shared_subspace_weights_have_the_planted_rank():
    shared = shared_subspace_regression(num_tasks=6, n_per_task=7, dim=10, rank=2, shared=True, seed=0)
    separate = shared_subspace_regression(num_tasks=6, n_per_task=7, dim=10, rank=2, shared=False, seed=0)
    assert np.linalg.matrix_rank(shared.weights) == 2
    assert np.linalg.matrix_rank(separate.weights) == 6  # one direction per task, in general position
    assert len(shared.X) == 6 and shared.X[0].shape == (7, 10) and shared.y[0].shape == (7,)
    np.testing.assert_array_equal(shared.shared, np.zeros(10))


def test_shared_subspace_targets_follow_the_weights_and_are_deterministic():
    tasks = shared_subspace_regression(num_tasks=2, n_per_task=500, dim=5, rank=1, noise=0.0, seed=4)
    for x, y, w in zip(tasks.X, tasks.y, tasks.weights):
        np.testing.assert_allclose(y, x @ w)
    again = shared_subspace_regression(num_tasks=2, n_per_task=500, dim=5, rank=1, noise=0.0, seed=4)
    np.testing.assert_array_equal(tasks.X[0], again.X[0])
    # E||w_t||^2 = 1: check the average over many tasks
    many = shared_subspace_regression(num_tasks=2000, n_per_task=1, dim=5, rank=3, seed=0)
    assert np.mean(np.sum(many.weights**2, axis=1)) == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(rank=6, dim=5), ValueError),
        (dict(rank=0), ValueError),
        (dict(num_tasks=2.0), TypeError),
        (dict(noise=-1.0), ValueError),
        (dict(noise=float("nan")), ValueError),
        (dict(seed=-1), ValueError),
    ],
)
def test_shared_subspace_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        shared_subspace_regression(**kwargs)
