"""What crosses without a copy: a contiguous float32 CPU input (tensor or NumPy array) is the
engine's input itself, and the classes' NumPy maps are views of the engine's output tensor."""

import numpy as np
import torch

import sightline
from sightline import _engine, _sightline

from conftest import load_input, load_model


def test_a_float32_tensor_reaches_the_engine_without_a_copy():
    x = load_input("gapnet")
    seen = _sightline.engine_input(x)  # the tensor explain() hands to the C++ engine
    assert seen.data_ptr() == x.data_ptr()
    assert torch.equal(seen, x)


def test_a_numpy_array_reaches_the_engine_without_a_copy():
    array = load_input("gapnet").numpy()
    seen = _sightline.engine_input(_engine.as_input(array))
    assert seen.data_ptr() == array.ctypes.data


def test_other_dtypes_and_layouts_are_converted_once():
    x = load_input("gapnet")
    for other in (x.double(), x.transpose(2, 3).contiguous().transpose(2, 3)):
        seen = _sightline.engine_input(other)
        assert seen.data_ptr() != other.data_ptr() and seen.dtype == torch.float32 and seen.is_contiguous()
        assert torch.equal(seen, x)


def test_double_input_gives_the_float_maps():
    model, x = load_model("gapnet"), load_input("gapnet")
    assert torch.equal(sightline.explain(model, x.double(), layer="features"),
                       sightline.explain(model, x, layer="features"))


def test_the_classes_maps_are_views_of_the_engines_tensor():
    cam = sightline.HiResCAM(model=load_model("gapnet"), target_layers=["features"])
    maps = cam(input_tensor=load_input("gapnet"))
    assert not maps.flags.owndata  # a view of the torch tensor's storage, not a copy
    assert isinstance(maps.base, np.ndarray) or maps.base is not None
    assert maps.shape == (2, 64, 80)
