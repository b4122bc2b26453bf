"""Bridge between the twins: copy the weights of a PyTorch model into its Keras twin.

With the weights copied, both frameworks compute the same function, so the
parity tests can feed identical numpy arrays to both and compare the outputs.
Only dense layers are mapped: ``torch.nn.Linear`` (``y = x W^T + b``, weight
of shape ``(out, in)``) to ``keras.layers.Dense`` (``y = x K + b``, kernel of
shape ``(in, out)``), so ``K = W^T``. Any other layer with weights raises
``TypeError``. Torch and TensorFlow are imported inside the functions, so
importing this module imports neither.
"""

from __future__ import annotations

from typing import Any


def _torch_linears(module: Any) -> list:
    from torch import nn

    linears = []
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            linears.append(sub)
        elif any(True for _ in sub.parameters(recurse=False)):
            raise TypeError(f"copy_mlp maps only torch.nn.Linear layers, found weights in {type(sub).__name__}")
    return linears


def _keras_denses(layer: Any) -> list:
    import keras

    if isinstance(layer, keras.layers.Dense):
        return [layer]
    if hasattr(layer, "layers"):
        return [dense for sub in layer.layers for dense in _keras_denses(sub)]
    if layer.weights:
        raise TypeError(f"copy_mlp maps only keras Dense layers, found weights in {type(layer).__name__}")
    return []


def copy_mlp(torch_module: Any, keras_layer: Any) -> None:
    """Copy every ``Linear`` of ``torch_module`` into the matching ``Dense`` of ``keras_layer``.

    Layers are paired in order (``module.modules()`` on the torch side,
    ``layer.layers`` recursively on the Keras side); the counts and shapes
    must agree, and the Keras layers must be built.
    """
    linears, denses = _torch_linears(torch_module), _keras_denses(keras_layer)
    if len(linears) != len(denses):
        raise ValueError(f"torch module has {len(linears)} Linear layers but the Keras layer has {len(denses)} Dense")
    for i, (linear, dense) in enumerate(zip(linears, denses)):
        if not dense.built:
            raise RuntimeError(f"Dense layer {dense.name!r} is not built: call the Keras model once first")
        weight = linear.weight.detach().cpu().numpy()
        if tuple(dense.kernel.shape) != weight.T.shape:
            raise ValueError(
                f"layer {i}: torch weight {weight.shape} (out, in) does not match Keras kernel "
                f"{tuple(dense.kernel.shape)} (in, out)"
            )
        if (linear.bias is None) != (dense.bias is None):
            raise ValueError(f"layer {i}: one framework has a bias and the other has none")
        dense.kernel.assign(weight.T)
        if linear.bias is not None:
            dense.bias.assign(linear.bias.detach().cpu().numpy())


def _pairs_sharing(t: Any, k: Any) -> list[tuple[Any, Any]]:
    if type(t).__name__ == "HardSharing":
        return [(t.trunk, k.trunk)] + [(t.heads[n], k.heads[n]) for n in t.task_names]
    return [(t.towers[n], k.towers[n]) for n in t.task_names]


def _pairs_cross_stitch(t: Any, k: Any) -> list[tuple[Any, Any]]:
    if len(t.units) != len(k.units) or (t.heads is None) != (k.heads is None):
        raise ValueError("the two cross-stitch networks have different numbers of stages or heads")
    for t_unit, k_unit in zip(t.units, k.units):
        k_unit.alpha.assign(t_unit.alpha.detach().cpu().numpy())
    pairs = []
    for n in t.task_names:
        if len(t.towers[n]) != len(k.towers[n]):
            raise ValueError(f"task {n!r} has a different number of stages in the two models")
        pairs += list(zip(t.towers[n], k.towers[n]))
        if t.heads is not None:
            pairs.append((t.heads[n], k.heads[n]))
    return pairs


def _zip_equal(a: Any, b: Any, what: str) -> list[tuple[Any, Any]]:
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"the two models have different numbers of {what}: {len(a)} vs {len(b)}")
    return list(zip(a, b))


def _pairs_mmoe(t: Any, k: Any) -> list[tuple[Any, Any]]:
    pairs = _zip_equal(t.experts, k.experts, "experts") + _zip_equal(t.gate_layers, k.gate_layers, "gates")
    return pairs + [(t.towers[n], k.towers[n]) for n in t.task_names]


def _pairs_ple(t: Any, k: Any) -> list[tuple[Any, Any]]:
    pairs = []
    for t_level, k_level in _zip_equal(t.levels, k.levels, "levels"):
        for n in t.task_names:
            pairs += _zip_equal(t_level.task_experts[n], k_level.task_experts[n], f"experts of task {n!r}")
            pairs.append((t_level.task_gates[n], k_level.task_gates[n]))
        pairs += _zip_equal(t_level.shared_experts, k_level.shared_experts, "shared experts")
        if (t_level.shared_gate is None) != (k_level.shared_gate is None):
            raise ValueError("the two PLE models differ in their shared gates")
        if t_level.shared_gate is not None:
            pairs.append((t_level.shared_gate, k_level.shared_gate))
    return pairs + [(t.towers[n], k.towers[n]) for n in t.task_names]


def _pairs_esmm(t: Any, k: Any) -> list[tuple[Any, Any]]:
    return [(t.bottom, k.bottom), (t.ctr_tower, k.ctr_tower), (t.cvr_tower, k.cvr_tower)]


_PAIRS = {
    "HardSharing": _pairs_sharing,
    "SoftSharing": _pairs_sharing,
    "CrossStitch": _pairs_cross_stitch,
    "MMoE": _pairs_mmoe,
    "PLE": _pairs_ple,
    "ESMM": _pairs_esmm,
}


def copy_torch_to_tf(torch_model: Any, tf_model: Any) -> Any:
    """Copy all weights of a :mod:`mtl_course.torch.models` model into its Keras twin.

    ``torch_model`` and ``tf_model`` must be the same class (``HardSharing``,
    ``SoftSharing``, ``CrossStitch``, ``MMoE``, ``PLE`` or ``ESMM``) with the
    same tasks and sizes, or two plain MLPs (then this is :func:`copy_mlp`).
    The Keras model must be built (call it once on a batch). Returns ``tf_model``.
    """
    import keras
    from torch import nn

    name = type(torch_model).__name__
    if name not in _PAIRS:
        if isinstance(torch_model, nn.Module) and isinstance(tf_model, keras.layers.Layer):
            copy_mlp(torch_model, tf_model)
            return tf_model
        raise TypeError(f"no weight mapping for {name}")
    if type(tf_model).__name__ != name:
        raise TypeError(f"cannot copy a torch {name} into a Keras {type(tf_model).__name__}")
    if tuple(torch_model.task_names) != tuple(tf_model.task_names):
        raise ValueError(f"task names differ: {torch_model.task_names} vs {tf_model.task_names}")
    for t_part, k_part in _PAIRS[name](torch_model, tf_model):
        copy_mlp(t_part, k_part)
    return tf_model
