"""Tests of mtl_course.chapters.ch08_gradient_cost (chapter 8's per-task gradient cost table)."""

import numpy as np
import pytest
import torch

from mtl_course.chapters import ch08_gradient_cost as gc


def _data(T, batch=6, features=5, seed=0):
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.standard_normal((batch, features)), dtype=torch.float64)
    y = torch.as_tensor(rng.standard_normal((batch, T)), dtype=torch.float64)
    return x, y


def test_loop_and_batched_jacobian_agree_and_match_hand_gradients():
    model = gc.cost_model(3, in_features=5, width=4, depth=2, seed=1).double()
    x, y = _data(3)
    loop = gc.per_task_gradients(model, x, y, "loop")
    batched = gc.per_task_gradients(model, x, y, "batched")
    P = sum(p.numel() for p in model.shared_parameters())
    assert loop.shape == batched.shape == (3, P)
    torch.testing.assert_close(loop, batched, rtol=1e-12, atol=1e-12)
    # row 1 is the gradient of task t1's loss alone
    model.zero_grad()
    out = model(x)["t1"].squeeze(-1)
    torch.nn.functional.mse_loss(out, y[:, 1]).backward()
    expected = torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()])
    torch.testing.assert_close(loop[1], expected, rtol=1e-12, atol=1e-12)


def test_representation_gradients_have_one_row_per_task_over_the_batch():
    model = gc.cost_model(2, in_features=5, width=4, depth=2).double()
    x, y = _data(2)
    R = gc.per_task_gradients(model, x, y, "representation")
    assert R.shape == (2, 6 * 4)
    # d L_t / d z only involves head t: zero for a head whose weights are zero
    with torch.no_grad():
        for p in model.heads["t0"].parameters():
            p.zero_()
    R = gc.per_task_gradients(model, x, y, "representation")
    assert torch.all(R[0] == 0) and torch.any(R[1] != 0)


def test_cost_model_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = gc.cost_model(2, seed=3)
    after = torch.rand(1)
    b = gc.cost_model(2, seed=3)
    assert torch.equal(before, after)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_gradient_cost_table_rows():
    rows = gc.gradient_cost_table(task_counts=(1, 3), batch_size=4, in_features=3, width=5,
                                  depth=1, repeats=1)
    assert [(r["tasks"], r["way"]) for r in rows] == [(T, w) for T in (1, 3) for w in gc.WAYS]
    P = 3 * 5 + 5  # one linear layer of the trunk
    numbers = {(r["tasks"], r["way"]): r["numbers"] for r in rows}
    assert numbers[(3, "loop")] == numbers[(3, "batched")] == 3 * P
    assert numbers[(3, "representation")] == 3 * 4 * 5
    assert all(r["seconds"] > 0 for r in rows)


def test_bad_arguments():
    model = gc.cost_model(2, in_features=5, width=4, depth=1)
    x, y = _data(2)
    with pytest.raises(ValueError, match="unknown way"):
        gc.per_task_gradients(model, x.float(), y.float(), "forward")
    with pytest.raises(ValueError, match="targets"):
        gc.per_task_gradients(model, x.float(), y[:, :1].float(), "loop")
    with pytest.raises(ValueError, match="num_tasks"):
        gc.cost_model(0)
    with pytest.raises(ValueError, match="repeats"):
        gc.gradient_cost_table(repeats=0)
    with pytest.raises(ValueError, match="task_counts"):
        gc.gradient_cost_table(task_counts=())
