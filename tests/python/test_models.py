"""Models as users hold them: an nn.Module (traced, once, with a warning), layers given as
submodules, and no side effects on the caller's model or torch's state beyond eval mode."""

import warnings

import numpy as np
import pytest
import torch

import sightline
from sightline.targets import ClassifierOutputTarget

from conftest import load_input, load_model


class SmallNet(torch.nn.Module):
    """conv -> ReLU -> conv (layer "features.2") -> GAP -> Linear, fixed weights."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(7)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(inplace=True),
                                            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU())
        self.dropout = torch.nn.Dropout(0.5)  # eval mode matters
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x):
        a = self.features(x)
        return self.fc(self.dropout(a.mean((2, 3))))


def input_batch():
    return torch.randn(3, 3, 32, 40, generator=torch.Generator().manual_seed(11))


def test_an_nn_module_is_traced_once_and_gives_the_traced_modules_maps():
    net, x = SmallNet(), input_batch()
    net.train()
    with pytest.warns(UserWarning, match="tracing SmallNet with torch.jit.trace"):
        maps = sightline.explain(net, x, layer="features", method="gradcam")
    assert not net.training  # eval mode, as pytorch-grad-cam
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second call neither traces nor warns
        again = sightline.explain(net, x, layer="features", method="gradcam")
    traced = torch.jit.trace(SmallNet().eval(), x)
    expected = sightline.explain(traced, x, layer="features", method="gradcam")
    assert torch.equal(maps, expected) and torch.equal(again, expected)
    assert maps.shape == (3, 32, 40) and float(maps.min()) >= 0 and float(maps.max()) <= 1


def test_a_scripted_module_gives_the_same_maps_as_its_trace():
    net, x = SmallNet().eval(), input_batch()
    scripted = torch.jit.script(net)
    traced = torch.jit.trace(net, x)
    for method in ["hirescam", "gradcam", "scorecam"]:
        a = sightline.explain(scripted, x, layer="features", method=method)
        b = sightline.explain(traced, x, layer="features", method=method)
        assert torch.allclose(a, b, atol=1e-6), method


def test_target_layers_as_submodules_like_pytorch_grad_cam():
    net, x = SmallNet().eval(), input_batch()
    scripted = torch.jit.script(net)
    by_name = sightline.HiResCAM(model=scripted, target_layers=["features.2"])(input_tensor=x)
    by_index = sightline.HiResCAM(model=scripted, target_layers=["features[-2]"])(input_tensor=x)
    by_module = sightline.HiResCAM(model=scripted, target_layers=[dict(scripted.named_modules())["features.2"]])(
        input_tensor=x)
    eager = sightline.HiResCAM(model=net, target_layers=[net.features[2]])(input_tensor=x)
    assert np.array_equal(by_name, by_module) and np.array_equal(by_name, by_index)
    assert np.allclose(by_name, eager, atol=1e-6)
    with pytest.raises(ValueError, match="not a submodule of the model"):
        sightline.explain(net, x, layer=torch.nn.Conv2d(3, 3, 1))


def test_the_callers_torch_state_is_left_as_it_was():
    model, x = load_model("gapnet"), load_input("gapnet")
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(True)
    torch.manual_seed(123)
    expected_next = torch.rand(4)
    torch.manual_seed(123)
    with torch.no_grad():  # the engine records its own gradients
        maps = sightline.explain(model, x, layer="features", method="gradcam")
        sightline.inspect(model, "features")
    assert torch.equal(torch.rand(4), expected_next)  # the global generator was not used
    assert all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())
    assert torch.is_grad_enabled()
    assert maps.shape == (2, 64, 80)
    for p, flag in zip(model.parameters(), flags):
        p.requires_grad_(flag)


def test_targets_in_every_accepted_form_agree():
    model, x = load_model("gapnet"), load_input("gapnet")
    reference = sightline.explain(model, x, layer="features", targets=[3, 3])
    for targets in (3, "3", np.int64(3), [ClassifierOutputTarget(3)] * 2, torch.tensor([3, 3]),
                    [np.int32(3), torch.tensor(3)]):
        assert torch.equal(sightline.explain(model, x, layer="features", targets=targets), reference), targets
