"""mtl_course.torch.gradients: batched per-task gradients, the fallback, and writing gradients back."""

from __future__ import annotations

import pytest
import torch

from mtl_course import torch as mtl
from mtl_course.core.aggregation import mgda_weights
from mtl_course.torch.aggregators import mgda
from mtl_course.torch.gradients import (
    jacobian,
    representation_jacobian,
    set_gradients,
    unflatten_gradients,
)


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    trunk = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh())
    heads = [torch.nn.Linear(5, 1) for _ in range(3)]
    x = torch.randn(8, 3)
    y = torch.randn(8, 3)
    return trunk, heads, x, y


def task_losses(trunk, heads, x, y, transform=lambda z: z):
    z = transform(trunk(x))
    return {f"task{t}": ((head(z).squeeze(1) - y[:, t]) ** 2).mean() for t, head in enumerate(heads)}, z


def per_task_reference(losses, params):
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True, materialize_grads=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def test_equals_per_task_autograd():
    trunk, heads, x, y = tiny_model()
    losses, _ = task_losses(trunk, heads, x, y)
    params = list(trunk.parameters())
    expected = per_task_reference(losses.values(), params)
    J = jacobian(losses, params)  # a dict
    assert J.shape == (3, sum(p.numel() for p in params))
    torch.testing.assert_close(J, expected, rtol=1e-6, atol=1e-7)
    losses, _ = task_losses(trunk, heads, x, y)
    torch.testing.assert_close(jacobian(list(losses.values()), params), expected, rtol=1e-6, atol=1e-7)


def test_unused_parameters_give_zero_columns():
    trunk, heads, x, y = tiny_model()
    losses, _ = task_losses(trunk, heads, x, y)
    params = list(trunk.parameters()) + list(heads[0].parameters())
    J = jacobian(losses, params)
    head_columns = J[:, -6:]  # heads[0]: 5 weights and a bias
    assert torch.all(head_columns[1:] == 0) and torch.any(head_columns[0] != 0)


def test_retain_graph():
    trunk, heads, x, y = tiny_model()
    losses, _ = task_losses(trunk, heads, x, y)
    params = list(trunk.parameters())
    first = jacobian(losses, params, retain_graph=True)
    torch.testing.assert_close(jacobian(losses, params), first)


class ItemSquare(torch.autograd.Function):
    """x**2 whose backward calls .item(), which vmap cannot batch."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if grad.abs().sum().item() < 0:  # never true; the .item() call is the point
            raise AssertionError
        return 2 * x * grad


def test_fallback_to_one_backward_per_task_warns_and_matches():
    trunk, heads, x, y = tiny_model()
    losses, _ = task_losses(trunk, heads, x, y, transform=ItemSquare.apply)
    params = list(trunk.parameters())
    expected = per_task_reference(losses.values(), params)
    with pytest.warns(UserWarning, match="one backward pass per task"):
        J = jacobian(losses, params, retain_graph=True)
    torch.testing.assert_close(J, expected, rtol=1e-6, atol=1e-7)
    # without retain_graph the failed batched attempt freed the graph: a clear error says what to do
    losses, _ = task_losses(trunk, heads, x, y, transform=ItemSquare.apply)
    with pytest.raises(ValueError, match="retain_graph=True"):
        jacobian(losses, params)


def test_retain_graph_false_frees_the_graph():
    """Before: retain_graph was hard-coded True, so a second backward through the losses succeeded."""
    trunk, heads, x, y = tiny_model()
    losses, _ = task_losses(trunk, heads, x, y)
    jacobian(losses, list(trunk.parameters()), retain_graph=False)
    with pytest.raises(RuntimeError, match="second time"):
        torch.stack(list(losses.values())).sum().backward()


def test_the_submodule_is_not_shadowed_by_the_function():
    """Before: ``import mtl_course.torch.jacobian as J`` gave the function ``jacobian``, whose
    attribute ``set_gradients`` does not exist; the module is now ``mtl_course.torch.gradients``."""
    import mtl_course.torch.gradients as G

    assert G.set_gradients is set_gradients and G.jacobian is jacobian
    assert callable(mtl.jacobian) and mtl.jacobian is jacobian


def test_representation_jacobian_and_mgda_ub():
    trunk, heads, x, y = tiny_model()
    losses, z = task_losses(trunk, heads, x, y)
    Jz = representation_jacobian(losses, z)
    assert Jz.shape == (3, z.numel())
    torch.testing.assert_close(Jz, per_task_reference(losses.values(), [z]))
    # the graph is retained by default: MGDA-UB then backpropagates the weighted loss
    Jz = Jz.double()
    alpha = mgda_weights((Jz @ Jz.T).numpy())
    torch.testing.assert_close(torch.from_numpy(alpha) @ Jz, mgda(Jz))
    sum(float(a) * loss for a, loss in zip(alpha, losses.values())).backward()
    assert all(p.grad is not None for p in trunk.parameters())
    with pytest.raises(ValueError, match="requires grad"):
        representation_jacobian(losses, z.detach())


def test_unflatten_and_set_gradients():
    params = [torch.nn.Parameter(torch.zeros(2, 3)), torch.nn.Parameter(torch.zeros(4))]
    direction = torch.arange(10.0)
    pieces = unflatten_gradients(direction, params)
    assert [p.shape for p in pieces] == [(2, 3), (4,)]
    torch.testing.assert_close(pieces[1], torch.tensor([6.0, 7.0, 8.0, 9.0]))
    set_gradients(params, direction)
    torch.testing.assert_close(params[0].grad, direction[:6].view(2, 3))
    set_gradients(params, direction)  # overwrites
    torch.testing.assert_close(params[1].grad, direction[6:])
    set_gradients(params, direction, accumulate=True)
    torch.testing.assert_close(params[1].grad, 2 * direction[6:])
    direction[0] = 100.0  # .grad does not alias the direction
    assert params[0].grad[0, 0] == 0.0
    with pytest.raises(ValueError, match="10 elements"):
        unflatten_gradients(torch.zeros(9), params)
    with pytest.raises(ValueError, match="1-D"):
        set_gradients(params, torch.zeros(2, 5))


def test_bad_input_raises():
    trunk, heads, x, y = tiny_model()
    losses, _ = task_losses(trunk, heads, x, y)
    params = list(trunk.parameters())
    with pytest.raises(ValueError, match="empty"):
        jacobian([], params)
    with pytest.raises(ValueError, match="empty"):
        jacobian(losses, [])
    with pytest.raises(ValueError, match="scalar"):
        jacobian([trunk(x).sum(dim=0)], params)
    with pytest.raises(ValueError, match="'task1'.*NaN or inf"):
        jacobian({**losses, "task1": losses["task1"] * float("nan")}, params)
    with pytest.raises(ValueError, match=r"params\[0\].*requires grad"):
        jacobian(losses, [torch.zeros(3)])
    with pytest.raises(ValueError, match="does not require grad"):
        jacobian([torch.tensor(1.0)], params)


def test_deterministic():
    results = []
    for _ in range(2):
        trunk, heads, x, y = tiny_model(seed=3)
        losses, _ = task_losses(trunk, heads, x, y)
        results.append(jacobian(losses, trunk.parameters()))
    assert torch.equal(results[0], results[1])


@pytest.mark.cuda
def test_jacobian_on_cuda():
    trunk, heads, x, y = tiny_model()
    cpu_losses, _ = task_losses(trunk, heads, x, y)
    expected = jacobian(cpu_losses, trunk.parameters())
    trunk.cuda()
    for head in heads:
        head.cuda()
    losses, _ = task_losses(trunk, heads, x.cuda(), y.cuda())
    J = jacobian(losses, trunk.parameters())
    assert J.device.type == "cuda"
    torch.testing.assert_close(J.cpu(), expected, rtol=1e-4, atol=1e-5)
    d = mgda(J)
    set_gradients(list(trunk.parameters()), d)
    assert all(p.grad.device.type == "cuda" for p in trunk.parameters())
