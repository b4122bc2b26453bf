"""Tests of chapter 9's benchmark driver (mtl_course.chapters.ch09_benchmark)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mtl_course.chapters import ch09_benchmark as bm
from mtl_course.core.tasks import Task
from mtl_course.metrics import delta_m

torch_mtl = pytest.importorskip("mtl_course.torch")


def tiny_digits(epochs: int = 1) -> bm.Problem:
    return bm.digits_problem(n_train=60, n_val=30, n_test=40, hidden=(8,), epochs=epochs, batch_size=30)


@pytest.fixture(scope="module")
def result() -> bm.BenchmarkResult:
    return bm.run_benchmark(torch_mtl, tiny_digits(), methods=("equal", "mgda", "dwa", "pcgrad"), seeds=(0, 1),
                            lrs=(1e-3, 1e-2))


# --------------------------------------------------------------------------
# paired_difference
# --------------------------------------------------------------------------


def test_paired_difference_by_hand():
    # d = (1, 2, 3): mean 2, sample std 1, half width t_{2,0.975} / sqrt(3) = 4.3027 / 1.7321
    out = bm.paired_difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert out["mean"] == pytest.approx(2.0)
    assert out["half_width"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert out["within_noise"] is True  # 2 - 2.484 < 0
    tight = bm.paired_difference([3.0, 3.1, 2.9], [0.0, 0.0, 0.0])
    assert tight["low"] == pytest.approx(3.0 - 4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert tight["within_noise"] is False


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50)), min_size=2, max_size=6))
def test_paired_difference_agrees_with_scipy_ttest_rel(pairs):
    a, b = np.array(pairs).T
    d = a - b
    if np.ptp(d) < 1e-6 * (1 + np.abs(d).max()):
        return  # a zero-variance difference makes the t test degenerate
    out = bm.paired_difference(a, b)
    p = stats.ttest_rel(a, b).pvalue
    if abs(p - 0.05) > 1e-6:
        assert out["within_noise"] == (p > 0.05)
    back = bm.paired_difference(b, a)
    assert back["mean"] == pytest.approx(-out["mean"], abs=1e-12)
    assert back["half_width"] == pytest.approx(out["half_width"], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("a, b, message", [
    ([1.0], [0.0], "at least two seeds"),
    ([1.0, 2.0], [0.0], "same length"),
    ([1.0, float("nan")], [0.0, 0.0], "finite"),
])
def test_paired_difference_rejects_bad_input(a, b, message):
    with pytest.raises(ValueError, match=message):
        bm.paired_difference(a, b)


# --------------------------------------------------------------------------
# problems and models
# --------------------------------------------------------------------------


def test_problems_have_flat_inputs_and_the_documented_tasks():
    digits = tiny_digits()
    assert digits.splits.train.x.shape == (60, 128)
    assert digits.outputs == {"left": 10, "right": 10, "parity": 2}
    assert digits.higher_is_better == {"left": True, "right": True, "parity": True}
    reg = bm.regression_problem(n_train=20, n_val=10, n_test=10, dim=4)
    assert [len(s) for s in reg.splits] == [20, 10, 10]
    assert reg.splits.val.x.shape == (10, 4)
    assert reg.higher_is_better == {"task1": False, "task2": False}


def test_problem_validation():
    good = tiny_digits()
    with pytest.raises(ValueError, match="outputs"):
        bm.Problem("x", good.splits, good.tasks, {"left": 10}, (8,), 1, 10)
    with pytest.raises(ValueError, match="at least one task"):
        bm.Problem("x", good.splits, {}, {}, (8,), 1, 10)
    with pytest.raises(ValueError, match="hidden"):
        bm.Problem("x", good.splits, good.tasks, good.outputs, (), 1, 10)
    with pytest.raises(ValueError, match="patience"):
        bm.Problem("x", good.splits, good.tasks, good.outputs, (8,), 1, 10, patience=0)


def test_build_model_has_one_head_per_requested_task():
    problem = tiny_digits()
    torch_mtl.seed_everything(0)
    model = bm.build_model(torch_mtl, problem, ["parity"])
    assert model.task_names == ("parity",)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == (128 + 1) * 8 + (8 + 1) * 2
    with pytest.raises(ValueError, match="subset"):
        bm.build_model(torch_mtl, problem, ["nope"])


def test_train_once_rejects_a_bad_learning_rate():
    with pytest.raises(ValueError, match="lr"):
        bm.train_once(torch_mtl, tiny_digits(), "equal", 0, 0.0)


# --------------------------------------------------------------------------
# run_benchmark
# --------------------------------------------------------------------------


def test_run_benchmark_runs_the_protocol(result):
    # 3 single-task baselines and 4 methods, each at 2 lrs and 2 seeds: every method gets the same grid
    assert len(result.runs) == 2 * 2 * (3 + 4)
    assert result.methods == ["equal", "dwa", "mgda", "pcgrad"]
    assert result.lrs == (1e-3, 1e-2)
    assert set(result.lr) == {"equal", "dwa", "mgda", "pcgrad"} and result.baseline_lr == result.lr["equal"]
    single = [r for r in result.runs if r.method == bm.SINGLE_TASK]
    assert len(single) == 12 and all(len(r.test) == 1 for r in single)
    for method in result.methods:
        assert sorted((r.lr, r.seed) for r in result.runs if r.method == method) == \
            [(1e-3, 0), (1e-3, 1), (1e-2, 0), (1e-2, 1)]


def test_every_method_keeps_its_own_best_validation_lr():
    # before, every method ran at equal weighting's lr; now each is tuned on the grid by its own val delta_m
    problem = tiny_digits(epochs=3)
    res = bm.run_benchmark(torch_mtl, problem, methods=("equal", "rlw"), seeds=(0, 1), lrs=(1e-3, 0.3))
    st_val = res.single_task_scores("val")
    for method in ("equal", "rlw"):
        by_lr = {lr: delta_m({t: np.mean([r.val[t] for r in res.method_runs(method, lr)]) for t in st_val},
                             st_val, problem.higher_is_better) for lr in res.lrs}
        assert res.lr[method] == max(by_lr, key=by_lr.get)
        assert {r.lr for r in res.method_runs(method)} == {res.lr[method]}


def test_choose_breaks_near_ties_by_grid_order():
    assert bm.choose({0.01: 1.0, 0.03: 2.0, 0.1: 2.0 + 1e-9}) == 0.03
    assert bm.choose({0.01: 2.0 + 1e-9, 0.03: 2.0}) == 0.01
    assert bm.choose({0.01: -40.0, 0.03: -40.0 - 1e-7, 0.1: -39.0}) == 0.1
    assert bm.choose({0.01: 0.5, 0.03: 0.2}, higher=False) == 0.03
    assert bm.choose({0.01: 0.2 + 1e-9, 0.03: 0.2}, higher=False) == 0.01
    assert bm.choose({0.01: 1.0, 0.03: 1.0 + 1e-3}) == 0.03  # a real difference is not a tie
    with pytest.raises(ValueError, match="finite"):
        bm.choose({0.01: float("nan")})
    with pytest.raises(ValueError, match="nothing"):
        bm.choose({})


def test_float64_runs_start_from_numpy_weights_and_stop_early():
    import torch

    from mtl_course.torch.runtime import float64_numpy_init

    problem = tiny_digits(epochs=40)
    assert problem.float64 and problem.patience == 3
    first = float64_numpy_init(bm.build_model(torch_mtl, problem), seed=5)
    torch.manual_seed(123)  # torch's own generator plays no part
    second = float64_numpy_init(bm.build_model(torch_mtl, problem), seed=5)
    for a, b in zip(first.parameters(), second.parameters()):
        assert a.dtype == torch.float64 and torch.equal(a, b)
    bound = 1 / math.sqrt(128)
    trunk = next(first.parameters())
    assert trunk.shape == (8, 128) and float(trunk.detach().abs().max()) <= bound
    run = bm.train_once(torch_mtl, problem, "equal", 0, 0.3)  # a large lr: validation stops improving soon
    assert run.best_epoch is not None and run.best_epoch < run.epochs < problem.epochs
    again = bm.train_once(torch_mtl, problem, "equal", 0, 0.3)
    assert (again.val, again.test, again.epochs) == (run.val, run.test, run.epochs)


def test_learning_rates_are_chosen_on_validation(result):
    higher = result.problem.higher_is_better
    for task, lr in result.single_task_lr.items():
        val = {r.lr: [] for r in result.runs}
        for r in result.runs:
            if r.method == bm.SINGLE_TASK and task in r.val:
                val[r.lr].append(r.val[task])
        assert max(val, key=lambda k: np.mean(val[k])) == lr
    st_val = result.single_task_scores("val")
    # delta_m of the mean val scores is what the tuning compares, for every method
    for method in result.methods:
        by_lr = {lr: delta_m({t: np.mean([r.val[t] for r in result.method_runs(method, lr)]) for t in st_val},
                             st_val, higher) for lr in (1e-3, 1e-2)}
        assert bm.choose(by_lr) == result.lr[method]


def test_delta_m_is_per_seed_against_mean_single_task_scores(result):
    base = result.single_task_scores()
    for method in result.methods:
        expected = [delta_m(r.test, base, result.problem.higher_is_better) for r in result.method_runs(method)]
        np.testing.assert_allclose(result.delta_m(method), expected)


def test_summary_rows(result):
    rows = result.summary()
    assert [r["method"] for r in rows] == [bm.SINGLE_TASK, "equal", "dwa", "mgda", "pcgrad"]
    mgda = rows[3]
    assert mgda["lr"] == result.lr["mgda"] and rows[0]["lr"] is None
    dm = result.delta_m("mgda")
    assert mgda["delta_m"] == pytest.approx((dm.mean(), dm.std(ddof=1)))
    vs = bm.paired_difference(dm, result.delta_m("equal"))
    assert mgda["vs_equal"]["mean"] == pytest.approx(vs["mean"])
    verdict = result.verdict("mgda")
    assert verdict.names == ("mgda", "equal") and not verdict.lower_is_better
    assert verdict.mean_difference == pytest.approx(vs["mean"])
    assert rows[1]["vs_equal"] is None
    left = [r.test["left"] for r in result.method_runs("dwa")]
    assert rows[2]["left"] == pytest.approx((np.mean(left), np.std(left, ddof=1)))


def test_format_table_and_plot(result):
    table = bm.format_table(result)
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["method", "lr", "left", "right", "parity"]
    assert lines[3].split()[:2] == ["equal", f"{result.lr['equal']:g}"]
    assert len(lines) == 2 + 5
    assert all(line == line.rstrip() for line in lines)
    assert lines[2].startswith(bm.SINGLE_TASK)
    ax = bm.plot_delta_m(result)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["equal", "dwa", "mgda", "pcgrad"]


def test_run_benchmark_is_deterministic(result):
    # pcgrad draws random task orders: the benchmark seeds them with the run's seed
    again = bm.run_benchmark(torch_mtl, tiny_digits(), methods=("equal", "mgda", "dwa", "pcgrad"), seeds=(0, 1),
                             lrs=(1e-3, 1e-2))
    assert [(r.method, r.lr, r.seed, r.val, r.test) for r in again.runs] == \
        [(r.method, r.lr, r.seed, r.val, r.test) for r in result.runs]


def test_single_seed_summary_has_no_paired_interval():
    res = bm.run_benchmark(torch_mtl, tiny_digits(), methods=("equal", "rlw"), seeds=(0,), lrs=(1e-2,))
    rows = res.summary()
    assert rows[-1]["method"] == "rlw" and rows[-1]["vs_equal"] is None
    assert rows[-1]["delta_m"][1] == 0.0


@pytest.mark.parametrize("kwargs, message", [
    ({"methods": ("equal", "sgd")}, "unknown method"),
    ({"seeds": (0, 0)}, "distinct"),
    ({"seeds": ()}, "distinct"),
    ({"lrs": ()}, "lrs"),
    ({"lrs": (0.01, 0.01)}, "lrs"),
])
def test_run_benchmark_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bm.run_benchmark(torch_mtl, tiny_digits(), **kwargs)


def test_every_package_method_is_benchmarked():
    assert set(bm.WEIGHTING_METHODS) == set(torch_mtl.WEIGHTINGS)
    assert set(bm.AGGREGATOR_METHODS) == set(torch_mtl.AGGREGATORS)


# --------------------------------------------------------------------------
# TensorFlow twin: the same driver runs with mtl_course.tf
# --------------------------------------------------------------------------


def test_tf_twin_builds_the_same_model_and_runs():
    tf_mtl = pytest.importorskip("mtl_course.tf")
    problem = bm.regression_problem(n_train=20, n_val=10, n_test=12, dim=4, hidden=(8,), epochs=1, batch_size=20)
    tf_mtl.seed_everything(0)
    tf_model = bm.build_model(tf_mtl, problem)
    tf_model(problem.splits.val.x)  # build the Keras weights
    n_tf = sum(int(np.prod(v.shape)) for v in tf_model.trainable_weights)
    torch_mtl.seed_everything(0)
    n_torch = sum(p.numel() for p in bm.build_model(torch_mtl, problem).parameters())
    assert n_tf == n_torch
    res = bm.run_benchmark(tf_mtl, problem, methods=("equal", "dwa"), seeds=(0,), lrs=(1e-2,))
    assert res.methods == ["equal", "dwa"]
    assert all(math.isfinite(v) and v > 0.0 for r in res.runs for v in r.test.values())  # MSEs
    torch_res = bm.run_benchmark(torch_mtl, problem, methods=("equal", "dwa"), seeds=(0,), lrs=(1e-2,))
    assert [(r.method, r.seed, sorted(r.test)) for r in res.runs] == \
        [(r.method, r.seed, sorted(r.test)) for r in torch_res.runs]


def test_pcgrad_by_name_is_seeded_by_the_run():
    # the benchmark passes method names: fit seeds pcgrad's random task order with its own seed
    import torch

    specs = {t: Task("mse") for t in "abc"}
    first, second = (torch_mtl.train.resolve_method("pcgrad", specs, 3) for _ in range(2))
    G = torch.tensor([[1.0, 0.0, 0.0], [-0.9, 1.0, 0.0], [-0.5, -0.8, 1.0]])
    assert torch.equal(first(G), second(G))
    assert bm.WEIGHTING_METHODS == tuple(torch_mtl.WEIGHTINGS)
    assert bm.AGGREGATOR_METHODS == tuple(torch_mtl.AGGREGATORS)


def test_worker_processes_give_the_same_runs(result):
    # every run seeds itself: two spawned processes reproduce the serial runs exactly
    again = bm.run_benchmark(torch_mtl, tiny_digits(), methods=("equal", "mgda", "dwa", "pcgrad"), seeds=(0, 1),
                             lrs=(1e-3, 1e-2), workers=2)
    assert [(r.method, r.lr, r.seed, r.val, r.test, r.epochs) for r in again.runs] == \
        [(r.method, r.lr, r.seed, r.val, r.test, r.epochs) for r in result.runs]
    assert again.lr == result.lr and again.single_task_lr == result.single_task_lr


def test_tune_seeds_choose_on_the_first_seeds_and_train_the_rest_at_the_kept_rates():
    problem = tiny_digits()
    full = bm.run_benchmark(torch_mtl, problem, methods=("equal", "dwa"), seeds=(0, 1), lrs=(1e-3, 1e-2))
    res = bm.run_benchmark(torch_mtl, problem, methods=("equal", "dwa"), seeds=(0, 1, 2), lrs=(1e-3, 1e-2),
                           tune_seeds=2)
    # tuning: 2 seeds x 2 lrs x (3 single-task + 2 methods); seed 2: 3 single-task + 2 methods + equal's other lr
    assert len(res.runs) == 2 * 2 * 5 + 3 + 2 + 1
    assert res.lr == full.lr and res.single_task_lr == full.single_task_lr  # chosen on seeds 0 and 1 only
    assert [r.seed for r in res.method_runs("dwa")] == [0, 1, 2]
    other = next(lr for lr in res.lrs if lr != res.lr["dwa"])
    assert [r.seed for r in res.method_runs("dwa", other)] == [0, 1]
    assert all(len(res.method_runs("equal", lr)) == 3 for lr in res.lrs)  # full_grid: equal at every rate
    assert len(res.delta_m("dwa")) == 3
    with pytest.raises(ValueError, match="tune_seeds"):
        bm.run_benchmark(torch_mtl, problem, seeds=(0, 1), tune_seeds=3)


# --------------------------------------------------------------------------
# a bracketing grid (ladder): scripted validation scores instead of training
# --------------------------------------------------------------------------

LADDER = (0.001, 0.003, 0.01, 0.03, 0.1)
# method -> lr -> validation accuracy on every task; seed s adds NOISE[method][s]
SCRIPT = {
    # best at 0.003, better than 0.01 on every seed by 0.01: moves there, 0.001 is worse: kept 0.003
    "equal": {0.001: 0.80, 0.003: 0.85, 0.01: 0.84, 0.03: 0.83, 0.1: 0.50},
    # 0.003 is better on average but not beyond noise (seeds disagree): stays at 0.01
    "rlw": {0.003: 0.86, 0.01: 0.85, 0.03: 0.80},
    # best at the upper edge of the start grid, 0.1 worse: kept 0.03
    "dwa": {0.01: 0.80, 0.03: 0.82, 0.1: 0.60},
    # better at every smaller rate beyond noise: the ladder ends at 0.001, not bracketed
    "mgda": {0.001: 0.90, 0.003: 0.88, 0.01: 0.86, 0.03: 0.84},
}
NOISE = {"rlw": {0.003: (0.05, -0.05, 0.04, 0.0)}}


def scripted_train_once(mtl, problem, method, seed, lr, tasks=None):
    if tasks is not None:  # single-task baselines: best at 0.01 (0.003 and 0.03 a little worse)
        value = 0.9 - 0.01 * abs(math.log10(lr) + 2) + 1e-3 * seed
        scores = {t: value for t in tasks}
    else:
        value = SCRIPT[method][lr] + NOISE.get(method, {}).get(lr, (0.0,) * 4)[seed] + 1e-3 * seed
        scores = dict.fromkeys(problem.tasks, value)
    return bm.Run(method=method, lr=lr, seed=seed, val=scores, test=scores, seconds=0.0, epochs=1)


def test_next_rate_steps_beyond_the_edge_where_the_best_is():
    assert bm._next_rate([0.01, 0.03], 0.01, LADDER) == 0.003
    assert bm._next_rate([0.01, 0.03], 0.03, LADDER) == 0.1
    assert bm._next_rate([0.003, 0.01, 0.03], 0.01, LADDER) is None  # interior
    assert bm._next_rate([0.001, 0.003], 0.001, LADDER) is None  # the ladder ends
    assert bm._next_rate([0.03, 0.1], 0.1, LADDER) is None


def test_ladder_brackets_every_choice_with_the_same_rule(monkeypatch):
    monkeypatch.setattr(bm, "train_once", scripted_train_once)
    res = bm.run_benchmark(torch_mtl, tiny_digits(), methods=("equal", "rlw", "dwa", "mgda"), seeds=(0, 1, 2),
                           lrs=(0.01, 0.03), ladder=LADDER)
    assert res.lr == {"equal": 0.003, "rlw": 0.01, "dwa": 0.03, "mgda": 0.001}
    assert res.tried == {"equal": (0.001, 0.003, 0.01, 0.03), "rlw": (0.003, 0.01, 0.03),
                         "dwa": (0.01, 0.03, 0.1), "mgda": (0.001, 0.003, 0.01, 0.03)}
    assert res.bracketed == {"equal": True, "rlw": True, "dwa": True, "mgda": False}
    assert res.single_task_lr == dict.fromkeys(("left", "right", "parity"), 0.01)
    assert res.single_task_tried == dict.fromkeys(("left", "right", "parity"), (0.003, 0.01, 0.03))
    assert all(res.single_task_bracketed.values())
    # the verdicts behind the moves: equal moved to 0.003 (better on 3 of 3 seeds), then 0.001 was worse
    first, second = res.steps["equal"]
    assert first.names == ("lr 0.003", "lr 0.01") and first.winner == "lr 0.003" and first.wins == 3
    assert first.mean_difference == pytest.approx(100 * 0.01 / (0.9 + 1e-3))  # delta_m: a relative gain
    assert second.names == ("lr 0.001", "lr 0.003") and second.winner == "lr 0.003"
    (rlw,) = res.steps["rlw"]
    assert rlw.mean_difference > 0 and not rlw.established  # better on average, not beyond noise: no move
    assert [v.winner for v in res.steps["dwa"]] == ["lr 0.03"]
    assert len(res.steps["mgda"]) == 2 and all(v.established for v in res.steps["mgda"])
    assert res.lrs == LADDER and res.ladder == LADDER
    # the tuning runs use seeds 0-2 at every rate tried, nothing else (no extra seeds here)
    assert sorted((r.lr, r.seed) for r in res.runs if r.method == "rlw") == \
        [(lr, s) for lr in (0.003, 0.01, 0.03) for s in (0, 1, 2)]


def test_ladder_trains_the_other_seeds_at_the_kept_rate(monkeypatch):
    monkeypatch.setattr(bm, "train_once", scripted_train_once)
    res = bm.run_benchmark(torch_mtl, tiny_digits(), methods=("equal", "dwa"), seeds=(0, 1, 2, 3),
                           lrs=(0.01, 0.03), ladder=LADDER, tune_seeds=3)
    assert [r.seed for r in res.method_runs("dwa")] == [0, 1, 2, 3]
    assert {r.lr for r in res.runs if r.method == "dwa" and r.seed == 3} == {0.03}
    # equal weighting (full_grid) at every rate it was tuned at, on every seed
    assert {r.lr for r in res.runs if r.method == "equal" and r.seed == 3} == set(res.tried["equal"])
    one = res.at(0.01, seeds=(0,))
    assert one.lr == {"equal": 0.01, "dwa": 0.01} and one.seeds == (0,)
    assert [r.seed for r in one.method_runs("dwa")] == [0]
    with pytest.raises(KeyError, match="no run at lr=0.1"):
        res.at(0.1, seeds=(0,))


@pytest.mark.parametrize("kwargs, message", [
    ({"lrs": (0.01, 0.1), "ladder": LADDER}, "neighbours"),
    ({"lrs": (0.01, 0.02), "ladder": LADDER}, "rates of the ladder"),
    ({"lrs": (0.01,), "ladder": (0.1, 0.01)}, "increasing"),
    ({"lrs": (0.01,), "ladder": LADDER, "tune_seeds": 1}, "2 tuning seeds"),
])
def test_ladder_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bm.run_benchmark(torch_mtl, tiny_digits(), seeds=(0, 1), **kwargs)
