"""Bad input raises ValueError with the CLI's one-line message; the interpreter survives."""

import numpy as np
import pytest
import torch

import sightline
from sightline.targets import ClassifierOutputTarget

from conftest import GRADCAM, cli_error, load_input, load_model


def test_an_unknown_layer_has_the_clis_message(tmp_path):
    x = load_input("gapnet")
    np.save(tmp_path / "image.npy", x[0].numpy())
    model_file = GRADCAM / "gapnet.pt"
    expected = cli_error("explain", "--model", model_file, "--layer", "featurez", "--input", tmp_path / "image.npy",
                         "--out", tmp_path / "out")
    with pytest.raises(ValueError) as error:
        sightline.explain(load_model("gapnet"), x, layer="featurez")
    # The CLI names the model file, the module its class.
    assert str(error.value) == expected.replace(str(model_file), "GapNet")
    assert "featurez" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("shape", [(2, 4, 64, 80), (3, 64, 80), (0, 3, 64, 80)])
def test_a_wrong_shape_is_a_value_error(shape):
    dims = "x".join(map(str, shape))
    with pytest.raises(ValueError, match=rf"^input: input tensor has shape {dims}; expected \[batch, 3, height, width\]$"):
        sightline.explain(load_model("gapnet"), torch.zeros(shape), layer="features")


def test_nan_input_is_a_value_error_naming_the_image():
    x = load_input("gapnet").clone()
    x[1, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match=r"^input 1: input values contain NaN or Inf$"):
        sightline.explain(load_model("gapnet"), x, layer="features")
    with pytest.raises(ValueError, match=r"^input 1: input values contain NaN or Inf$"):
        sightline.GradCAM(model=load_model("gapnet"), target_layers=["features"])(input_tensor=x)


def test_a_size_the_head_cannot_take_is_a_value_error():
    # flatnet's head is flatten -> Linear: it runs on 48 x 64 only.
    with pytest.raises(ValueError, match=r"^FlatNet: the model does not run on 32x32 input"):
        sightline.explain(load_model("flatnet"), torch.zeros(1, 3, 32, 32), layer="features")
    model = load_model("flatnet")
    sightline.explain(model, load_input("flatnet"), layer="features")  # the engine exists now
    with pytest.raises(ValueError, match=r"^FlatNet: the model does not run on 40x40 input"):
        sightline.explain(model, torch.zeros(1, 3, 40, 40), layer="features")


def test_bad_methods_and_targets_are_value_errors():
    model, x = load_model("gapnet"), load_input("gapnet")
    with pytest.raises(ValueError, match=r"hirescamm"):
        sightline.explain(model, x, layer="features", method="hirescamm")
    with pytest.raises(ValueError, match=r"^target 10: class index out of range; the model has 10 classes \(0\.\.9\)$"):
        sightline.explain(model, x, layer="features", targets=[1, 10])
    with pytest.raises(ValueError, match=r"^targets: 1 given for a batch of 2 images; give one per image$"):
        sightline.GradCAM(model=model, target_layers=["features"])(input_tensor=x, targets=[ClassifierOutputTarget(1)])
    with pytest.raises(ValueError, match=r"^targets: class index -1 is negative$"):
        sightline.explain(model, x, layer="features", targets=-1)
    with pytest.raises(ValueError, match=r"ClassifierOutputSoftmaxTarget is not supported"):
        class ClassifierOutputSoftmaxTarget:
            category = 1
        sightline.explain(model, x, layer="features", targets=[ClassifierOutputSoftmaxTarget()] * 2)


def test_unsupported_pytorch_grad_cam_options_are_value_errors():
    model = load_model("gapnet")
    with pytest.raises(ValueError, match=r"^target_layers: give one layer, got 2"):
        sightline.GradCAM(model=model, target_layers=["features", "fc"])
    with pytest.raises(ValueError, match=r"^reshape_transform: not supported"):
        sightline.GradCAM(model=model, target_layers=["features"], reshape_transform=lambda t: t)
    with pytest.raises(ValueError, match=r"^aug_smooth / eigen_smooth: not supported"):
        sightline.GradCAM(model=model, target_layers=["features"])(input_tensor=load_input("gapnet"), aug_smooth=True)


def test_a_model_that_fails_inside_is_a_runtime_error():
    class Picky(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Conv2d(3, 4, 3)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            a = self.features(x)
            if bool(a.abs().sum() > 1e9):
                raise RuntimeError("activations too large")
            return self.fc(a.mean((2, 3)))

    model = torch.jit.script(Picky())
    with pytest.raises(RuntimeError, match=r"activations too large") as error:
        sightline.explain(model, torch.full((1, 3, 8, 8), 1e8), layer="features")
    assert error.type is RuntimeError and "\n" not in str(error.value)
