"""Building blocks shared by the PyTorch multi-task models: ``mlp`` and the base class."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from mtl_course.checks import check_task_names, layer_sizes
from mtl_course.core.model_config import check_activation

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def mlp(sizes: Sequence[int], activation: str | None = "relu", output_activation: bool = False) -> nn.Sequential:
    """A multilayer perceptron ``Linear, act, Linear, act, ..., Linear [, act]``.

    ``sizes = (d_in, h_1, ..., d_out)`` gives ``len(sizes) - 1`` Linear layers
    with the activation between them, and after the last one only when
    ``output_activation`` is true (experts end with it, output towers do not).
    The Keras twin :func:`mtl_course.tf.models.mlp` has the same layout, one
    ``Dense`` per ``Linear``, which is what :func:`mtl_course.parity.copy_mlp` maps.

    Examples:
        >>> mlp((3, 8, 1))
        Sequential(
          (0): Linear(in_features=3, out_features=8, bias=True)
          (1): ReLU()
          (2): Linear(in_features=8, out_features=1, bias=True)
        )
    """
    sizes = layer_sizes(sizes, "sizes")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs an input and an output size, got {sizes}")
    activation = check_activation(activation)
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(d_in, d_out))
        is_last = i == len(sizes) - 2
        if activation != "identity" and (output_activation or not is_last):
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def parameters_of(modules: Iterable[nn.Module]) -> list[nn.Parameter]:
    """The parameters of several modules, in order, without duplicates."""
    seen: set[int] = set()
    params = []
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params


class MultiTaskModel(nn.Module):
    """Common interface of the course's multi-task models.

    ``forward(x)`` returns a dict ``task name -> output`` in the order of
    :attr:`task_names`. :meth:`shared_parameters` are the parameters that every
    task's output depends on, :meth:`task_parameters` those that only one task
    uses; together they partition ``parameters()``. Gradient methods (MGDA,
    PCGrad, ...) take the Jacobian of the task losses with respect to the
    shared parameters.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> class TwoHeads(MultiTaskModel):
        ...     def __init__(self):
        ...         super().__init__(['a', 'b'])
        ...         self.trunk, self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 1), nn.Linear(4, 1)
        ...     def forward(self, x):
        ...         z = self.trunk(x)
        ...         return {'a': self.a(z), 'b': self.b(z)}
        ...     def shared_parameters(self):
        ...         return list(self.trunk.parameters())
        ...     def task_parameters(self, name):
        ...         return list(getattr(self, name).parameters())
        >>> model = TwoHeads()
        >>> model.task_names, len(model.shared_parameters()), len(model.task_parameters('a'))
        (('a', 'b'), 2, 2)
    """

    def __init__(self, task_names: Sequence[str]) -> None:
        super().__init__()
        self._task_names = check_task_names(task_names)

    @property
    def task_names(self) -> tuple[str, ...]:
        return self._task_names

    def _check_task(self, name: str) -> None:
        if name not in self._task_names:
            raise ValueError(f"unknown task {name!r}; this model's tasks are {self._task_names}")

    def shared_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        raise NotImplementedError


def check_input(x: torch.Tensor, features: int) -> None:
    """Raise unless ``x`` is a float tensor of shape ``(batch, features)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != features:
        raise ValueError(f"expected input of shape (batch, {features}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point input, got {x.dtype}")
