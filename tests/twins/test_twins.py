"""mtl_course.torch and mtl_course.tf expose the same public API.

The course promises that a reader can switch frameworks by changing one
import. These tests hold both subpackages to that: the same public names, and
for every function and class the same parameter names and defaults.
"""

import inspect

import pytest

import mtl_course.tf as tf_twin
import mtl_course.torch as torch_twin

# Names only one framework has, and why.
ONLY_TORCH = {
    # PyTorch accumulates gradients in .grad; Keras optimizers take a list of
    # gradients instead (mtl_course.tf.unflatten_gradients gives that list).
    "set_gradients",
}
# Parameters that differ by necessity: TensorFlow records the forward pass on
# a GradientTape that the gradient functions must receive.
TAPE_FUNCTIONS = {"backward", "jacobian", "representation_jacobian"}
# Each framework's own word for trainable tensors: torch "parameters", Keras "variables".
SAME_MEANING = {"variables": "params", "shared_variables": "shared_params"}


def test_same_public_names():
    assert set(torch_twin.__all__) - ONLY_TORCH == set(tf_twin.__all__)
    for name in tf_twin.__all__:
        assert hasattr(tf_twin, name) and hasattr(torch_twin, name), name


def _signature(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    # Keras layers also accept **kwargs (name, dtype, ...), which PyTorch modules do not.
    return [(SAME_MEANING.get(p.name, p.name),
             p.default if p.default is not inspect.Parameter.empty else "<required>")
            for p in signature.parameters.values()
            if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]


@pytest.mark.parametrize("name", sorted(set(tf_twin.__all__) - TAPE_FUNCTIONS))
def test_same_arguments_and_defaults(name):
    torch_obj, tf_obj = getattr(torch_twin, name), getattr(tf_twin, name)
    if not callable(torch_obj):
        assert type(torch_obj) is type(tf_obj)
        if isinstance(torch_obj, dict):
            assert list(torch_obj) == list(tf_obj), f"{name} has different keys"
        return
    assert _signature(torch_obj) == _signature(tf_obj), f"{name} differs between the twins"


@pytest.mark.parametrize("name", sorted(TAPE_FUNCTIONS))
def test_tape_functions_differ_only_by_the_tape(name):
    torch_params = [p for p, _ in _signature(getattr(torch_twin, name))]
    tf_params = [p for p, _ in _signature(getattr(tf_twin, name))]
    assert tf_params[0] == "tape"
    assert tf_params[1:] == [p for p in torch_params if p != "retain_graph"][: len(tf_params) - 1]


@pytest.mark.parametrize("name", sorted(torch_twin.__all__))
def test_public_names_are_documented(name):
    for twin in (torch_twin, tf_twin):
        obj = getattr(twin, name, None)
        if obj is None or not callable(obj) or isinstance(obj, dict):
            continue
        assert inspect.getdoc(obj), f"{twin.__name__}.{name} has no docstring"
