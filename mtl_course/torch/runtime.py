"""Device selection and seeding for the PyTorch side of the course."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from mtl_course.checks import check_seed


def device() -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU.

    Nothing in :mod:`mtl_course.torch` hard-codes a device; models and tensors
    are moved to ``device()`` by the caller (the chapters do this once).

    Examples:
        >>> import torch
        >>> device().type in ('cuda', 'mps', 'cpu')
        True
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every CUDA device).

    On CPU, seeding is enough: two runs of the same code give bit-identical
    results. On CUDA, ``deterministic=True`` also asks PyTorch for
    deterministic kernels (``torch.use_deterministic_algorithms(True,
    warn_only=True)``, cuDNN benchmarking off, and
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8``) and full float32 precision: TensorFloat-32
    off for matrix products and for cuDNN convolutions (PyTorch's default uses
    TF32 in cuDNN convolutions on Ampere and newer GPUs; its TensorFlow twin
    turns TF32 off too, so the twins agree to float32 rounding). Runs are then
    repeatable on the same GPU model, driver and library versions, except for
    the few operations that have no deterministic kernel (PyTorch warns about
    those). Results still differ *between* CPU and GPU, and between GPU models,
    in the last bits.

    Returns nothing (like the TensorFlow twin), so a notebook cell that ends
    with it prints nothing. For a data loader, make a generator with
    ``torch.Generator().manual_seed(seed)``.

    Examples:
        >>> import torch
        >>> seed_everything(0, deterministic=False)
        >>> a = torch.rand(2)
        >>> seed_everything(0, deterministic=False)
        >>> torch.equal(a, torch.rand(2))
        True
    """
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def float64_numpy_init(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    r"""``model`` in float64, every ``nn.Linear`` drawn again by numpy: the same start on every CPU.

    Weights and biases of a layer with :math:`n_{in}` inputs are drawn from
    :math:`U(-1/\sqrt{n_{in}}, 1/\sqrt{n_{in}})`, the distribution of PyTorch's
    own ``nn.Linear`` initialisation, layer after layer from
    ``np.random.default_rng(seed)``. PyTorch's ``uniform_`` differs in the last
    bits between CPU instruction sets, and a long training run with early
    stopping can turn those bits into other epochs and other printed numbers;
    numpy's generator gives the same bits everywhere, and float64 keeps the
    kernels' rounding differences (about :math:`10^{-16}`) far below what flips a
    prediction. Two models built from the same ``seed`` whose first layers have
    the same shapes start with the same first layers. Parameters of other
    modules keep their values (converted to float64). The model is changed in
    place and returned; its device is kept.

    Examples:
        >>> import torch
        >>> a = float64_numpy_init(torch.nn.Sequential(torch.nn.Linear(3, 2)), seed=0)
        >>> b = float64_numpy_init(torch.nn.Sequential(torch.nn.Linear(3, 2)), seed=0)
        >>> a[0].weight.dtype, torch.equal(a[0].weight, b[0].weight)
        (torch.float64, True)
        >>> bool((a[0].weight.abs() <= 3 ** -0.5).all())
        True
    """
    check_seed(seed)
    model = model.double()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                bound = 1.0 / np.sqrt(module.in_features)
                for param in (module.weight, module.bias):
                    if param is not None:
                        param.copy_(torch.as_tensor(rng.uniform(-bound, bound, size=tuple(param.shape)),
                                                    device=param.device))
    return model
