"""The Python API gives the CLI's numbers bit for bit, and pytorch-grad-cam's reference maps
(tests/fixtures/gradcam) within 1e-4 through the pytorch-grad-cam-style classes."""

import json

import numpy as np
import pytest
import torch

import sightline
from sightline.targets import ClassifierOutputTarget

from conftest import GRADCAM, load_input, load_model, run_cli

CLI_METHODS = ["hirescam", "gradcam", "gradcam++", "layercam", "scorecam", "saliency"]


def cli_maps(tmp_path, model, x, methods, target, raw=False):
    """`sightline explain` on the images of x saved as .npy files (one batch): {(method, image): map}."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for b in range(x.shape[0]):
        np.save(inputs / f"image{b}.npy", x[b].numpy())
    out = tmp_path / "out"
    run_cli("explain", "--model", GRADCAM / f"{model}.pt", "--layer", "features", "--input", inputs,
            "--out", out, "--method", ",".join(methods), "--target", target, "--batch", x.shape[0],
            "--no-overlay", *(["--raw"] if raw else []))
    summary = json.loads((out / "summary.json").read_text())
    maps = {}
    for item in summary["items"]:
        b = int(item["stem"][len("image"):])
        maps[(item["method"], b)] = np.load(out / item["map"])
        if raw:
            maps[(item["method"] + ".raw", b)] = np.load(out / item["raw"])
    return maps


@pytest.mark.parametrize("model", ["gapnet", "flatnet"])
@pytest.mark.parametrize("target", ["top1", "3"])
def test_explain_equals_the_cli_bit_for_bit(tmp_path, model, target):
    x = load_input(model)
    expected = cli_maps(tmp_path, model, x, CLI_METHODS, target, raw=True)
    targets = None if target == "top1" else int(target)
    maps = sightline.explain(load_model(model), x, layer="features", method=CLI_METHODS, targets=targets)
    raw = sightline.explain(load_model(model), x, layer="features", method=CLI_METHODS, targets=targets, raw=True)
    for key in CLI_METHODS:
        assert maps[key].shape == (2,) + tuple(x.shape[2:])
        assert maps[key].dtype == torch.float32
        for b in range(2):
            assert np.array_equal(maps[key][b].numpy(), expected[(key, b)]), (key, b)
            assert np.array_equal(raw[key][b].numpy(), expected[(key + ".raw", b)]), (key, b)


def test_per_image_targets_equal_explaining_each_image_alone():
    model, x = load_model("gapnet"), load_input("gapnet")
    both = sightline.explain(model, x, layer="features", targets=[3, 7])
    first = sightline.explain(model, x[:1], layer="features", targets=3)
    second = sightline.explain(model, x[1:], layer="features", targets=7)
    assert torch.allclose(both[0], first[0], atol=1e-6) and torch.allclose(both[1], second[0], atol=1e-6)
    assert not torch.allclose(both[1], sightline.explain(model, x[1:], layer="features", targets=3)[0], atol=1e-3)


def test_top_k_gives_k_maps_per_image():
    model, x = load_model("gapnet"), load_input("gapnet")
    maps = sightline.explain(model, x, layer="features", targets="top3")
    assert maps.shape == (2, 3) + tuple(x.shape[2:])
    top1 = sightline.explain(model, x, layer="features")
    assert torch.equal(maps[:, 0], top1)


CLASSES = {"GradCAM": sightline.GradCAM, "HiResCAM": sightline.HiResCAM,
           "GradCAMElementWise": sightline.GradCAMElementWise, "GradCAMPlusPlus": sightline.GradCAMPlusPlus,
           "XGradCAM": sightline.XGradCAM, "LayerCAM": sightline.LayerCAM, "EigenCAM": sightline.EigenCAM,
           "ScoreCAM": sightline.ScoreCAM, "AblationCAM": sightline.AblationCAM}


def reference_cases():
    manifest = json.loads((GRADCAM / "manifest.json").read_text())
    return [e for e in manifest["entries"] if (GRADCAM / e["model_file"]).exists()]


@pytest.mark.parametrize("entry", reference_cases(), ids=lambda e: f"{e['model']}-{e['method']}-{e['target']}")
def test_classes_match_pytorch_grad_cam(entry):
    model = torch.jit.load(str(GRADCAM / entry["model_file"]))
    x = torch.from_numpy(np.load(GRADCAM / entry["input_file"]))
    targets = None if entry["target"] == "top1" else [ClassifierOutputTarget(3)] * x.shape[0]
    with CLASSES[entry["method"]](model=model, target_layers=[entry["target_layer"]]) as cam:
        maps = cam(input_tensor=x, targets=targets)
    reference = np.load(GRADCAM / entry["file"])
    assert isinstance(maps, np.ndarray) and maps.dtype == np.float32 and maps.shape == reference.shape
    assert cam.outputs.argmax(1).tolist() == entry["classes"] or entry["target"] != "top1"
    if entry["method"] == "EigenCAM":  # the SVD's sign is arbitrary: either sign, per image
        flipped = np.load(GRADCAM / f"{entry['model']}__EigenCAM__signflip.npy")
        for b in range(x.shape[0]):
            assert min(np.abs(maps[b] - reference[b]).max(), np.abs(maps[b] - flipped[b]).max()) <= 1e-4
        return
    assert np.abs(maps - reference).max() <= 1e-4
