"""ESMM, the Entire Space Multi-task Model for conversion rates (PyTorch).

It has no experts: a shared bottom, a CTR tower and a CVR tower whose outputs
combine into the click-and-conversion probability (:func:`ctcvr_logit`).
Inputs are dense floats of shape ``(batch, input_dim)``; outputs are logits of
shape ``(batch, 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mtl_course.core.model_config import esmm_sizes
from mtl_course.torch.models.base import MultiTaskModel, check_input, mlp, parameters_of

__all__ = ["ESMM", "ctcvr_logit"]


def ctcvr_logit(click_logit: torch.Tensor, cvr_logit: torch.Tensor) -> torch.Tensor:
    """The logit of ``pCTCVR = sigmoid(a) * sigmoid(b)``, computed without overflow.

    ``log p = logsigmoid(a) + logsigmoid(b)`` and, since
    ``1 - s(a)s(b) = s(-a) + s(a)s(-b)``,
    ``log(1 - p) = logaddexp(logsigmoid(-a), logsigmoid(a) + logsigmoid(-b))``;
    both are finite for finite logits, so the logit ``log p - log(1 - p)``
    is finite too and a binary cross-entropy on logits stays safe.

    Examples:
        >>> import torch
        >>> a, b = torch.tensor([0.0, 100.0]), torch.tensor([0.0, 100.0])
        >>> p = torch.sigmoid(ctcvr_logit(a, b))
        >>> p.tolist()  # 0.5 * 0.5, and no overflow for large logits
        [0.25, 1.0]
    """
    log_p = F.logsigmoid(click_logit) + F.logsigmoid(cvr_logit)
    log_not_p = torch.logaddexp(F.logsigmoid(-click_logit), F.logsigmoid(click_logit) + F.logsigmoid(-cvr_logit))
    return log_p - log_not_p


class ESMM(MultiTaskModel):
    """Entire Space Multi-task Model (Ma, Zhao, Huang, Wang, Hu, Zhu and Gai,
    "Entire Space Multi-Task Model: An Effective Approach for Estimating
    Post-Click Conversion Rate", SIGIR 2018).

    A shared bottom (standing in for the paper's shared embedding, as inputs
    here are dense features) feeds a CTR tower and a CVR tower. The model is
    trained on every impression with two tasks:

    - ``"click"``: logit of pCTR = p(click | x);
    - ``"conversion"``: logit of pCTCVR = p(click and conversion | x) = pCTR * pCVR,
      computed by :func:`ctcvr_logit`;

    and ``forward`` also returns ``"cvr"``, the logit of pCVR = p(conversion |
    click, x), which has no label on the entire space and is not a task
    (it is not in :attr:`~MultiTaskModel.task_names`). All outputs are logits of shape
    ``(batch, 1)``: train with ``binary_cross_entropy_with_logits``.

    Parameter split: the bottom and the CTR tower reach both tasks (shared);
    only the CVR tower is task ``"conversion"``'s own; ``"click"`` has none.

    Examples:
        >>> import torch
        >>> model = ESMM(6, bottom_hidden=8, tower_hidden=4)
        >>> out = model(torch.ones(2, 6))
        >>> model.task_names, {k: tuple(v.shape) for k, v in out.items()}
        (('click', 'conversion'), {'click': (2, 1), 'conversion': (2, 1), 'cvr': (2, 1)})
        >>> torch.allclose(torch.sigmoid(out['conversion']), torch.sigmoid(out['click']) * torch.sigmoid(out['cvr']))
        True
    """

    def __init__(
        self,
        input_dim: int,
        bottom_hidden: int | Sequence[int],
        tower_hidden: int | Sequence[int] = (),
        activation: str = "relu",
    ) -> None:
        super().__init__(("click", "conversion"))
        self.input_dim, bottom, tower = esmm_sizes(input_dim, bottom_hidden, tower_hidden)
        self.bottom = mlp(bottom, activation, output_activation=True)
        self.ctr_tower, self.cvr_tower = mlp(tower, activation), mlp(tower, activation)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_input(x, self.input_dim)
        z = self.bottom(x)
        click, cvr = self.ctr_tower(z), self.cvr_tower(z)
        return {"click": click, "conversion": ctcvr_logit(click, cvr), "cvr": cvr}

    def shared_parameters(self) -> list[nn.Parameter]:
        return parameters_of([self.bottom, self.ctr_tower])

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self._check_task(name)
        return list(self.cvr_tower.parameters()) if name == "conversion" else []
