"""sightline.audit and sightline.sanity on tensors give the numbers `sightline audit` and
`sightline sanity` give on the same data, leave the caller's model as it was, and refuse bad
input with ValueError."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import sightline

from conftest import GRADCAM, load_input, load_model, run_cli

CLASSES = 10  # gapnet's outputs


def voc_folder(root, count=6, height=64, width=80):
    """A VOC-style folder laid out as a user would: random pictures, one or two rectangles of
    classes 1..10 per mask, an ignore border, classes.txt with the background first, val.txt."""
    rng = np.random.default_rng(3)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    ids, pictures, masks = [], [], []
    for i in range(count):
        picture = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        mask = np.zeros((height, width), np.uint8)
        for _ in range(1 + i % 2):
            top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
            mask[top:top + height // 3, left:left + width // 3] = rng.integers(1, CLASSES + 1)
        mask[0, :] = 255
        name = f"photo_{i:02d}"
        Image.fromarray(picture).save(root / "JPEGImages" / f"{name}.png")
        indexed = Image.fromarray(mask, mode="P")
        indexed.putpalette([v for k in range(256) for v in (k, 255 - k, (7 * k) % 256)])
        indexed.save(root / "SegmentationClass" / f"{name}.png")
        ids.append(name)
        pictures.append(picture)
        masks.append(mask)
    (root / "classes.txt").write_text("background\n" + "".join(f"thing{c}\n" for c in range(CLASSES)))
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    x = torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).float() / 255.0  # mean 0, std 1
    return x, masks


@pytest.mark.parametrize("target", ["label", "predicted"])
def test_audit_gives_the_cli_numbers(tmp_path, target):
    x, masks = voc_folder(tmp_path / "voc")
    out = tmp_path / "out"
    run_cli("audit", "--model", GRADCAM / "gapnet.pt", "--data", tmp_path / "voc", "--split", "val",
            "--layer", "features", "--method", "hirescam", "--mean", "0,0,0", "--std", "1,1,1",
            "--target", target, "--out", out)
    cli = json.loads((out / "audit.json").read_text())
    names = [f"thing{c}" for c in range(CLASSES)]
    py = sightline.audit(load_model("gapnet"), x, masks, layer="features", method="hirescam", target=target,
                         class_names=names)
    assert py["trustworthy"] == cli["trustworthy"] and py["guarantee"] == cli["guarantee"]
    assert len(py["records"]) == len(cli["records"]) > 6
    for a, b in zip(py["records"], cli["records"]):
        assert (a["class"], a["explained_class"], a["correct"]) == (b["class"], b["explained_class"], b["correct"])
        for key in ("object_mass", "elsewhere_mass", "object_area", "total_mass", "probability"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), key
    assert py["overall"]["verdict"] == cli["overall"]["verdict"]
    assert py["overall"]["position"] == pytest.approx(cli["overall"]["position"], rel=1e-4, abs=1e-6)
    assert [c["name"] for c in py["classes"]] == [c["name"] for c in cli["classes"]]


def test_audit_context_masks_and_bad_input():
    model = load_model("gapnet")
    x = load_input("gapnet")
    masks = np.zeros((2, 64, 80), np.uint8)
    masks[:, 10:30, 10:40] = 3
    context = np.zeros_like(masks)
    context[:, 30:, :] = 1
    report = sightline.audit(model, x, masks, layer="features", context=context)
    assert report["records"][0]["context_area"] > 0
    assert report["records"][0]["class"] == "2"  # mask id 3 = output 2
    with pytest.raises(ValueError, match="masks: 1 masks for 2 images; give one per image"):
        sightline.audit(model, x, masks[:1], layer="features")
    with pytest.raises(ValueError, match="image 0: class id 11 is outside the model's 10 outputs"):
        sightline.audit(model, x, np.full((2, 64, 80), 11, np.uint8), layer="features")
    with pytest.raises(ValueError, match="target: 'best'"):
        sightline.audit(model, x, masks, layer="features", target="best")
    with pytest.raises(ValueError, match="thresholds: 1.5 is not in"):
        sightline.audit(model, x, masks, layer="features", thresholds=(1.5,))


def test_sanity_gives_the_cli_numbers_and_leaves_the_model_alone(tmp_path):
    model = load_model("gapnet")
    x = load_input("gapnet")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for b in range(x.shape[0]):
        np.save(inputs / f"image{b}.npy", x[b].numpy())
    out = tmp_path / "out"
    run_cli("sanity", "--model", GRADCAM / "gapnet.pt", "--input", inputs, "--layer", "features",
            "--method", "gradcam,hirescam", "--seed", "5", "--out", out)
    cli = json.loads((out / "sanity.json").read_text())
    before = {name: p.clone() for name, p in model.named_parameters()}
    py = sightline.sanity(model, x, layer="features", methods=["gradcam", "hirescam"], seed=5)
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), name
    assert [s["name"] for s in py["steps"]] == [s["name"] for s in cli["steps"]]
    assert set(py["methods"]) == {"gradcam", "hirescam", "sobel"}
    for method in py["methods"]:
        for a, b in zip(py["methods"][method]["steps"], cli["methods"][method]["steps"]):
            for metric in ("spearman", "spearman_abs", "ssim", "hog"):
                assert a["metrics"][metric]["per_image"] == pytest.approx(b["metrics"][metric]["per_image"],
                                                                          abs=1e-9), (method, metric)
        assert py["methods"][method]["verdict"] == cli["methods"][method]["verdict"]


def test_sanity_bad_input():
    model = load_model("gapnet")
    x = load_input("gapnet")
    with pytest.raises(ValueError, match="at least 2 images"):
        sightline.sanity(model, x[:1], layer="features", methods="gradcam")
    with pytest.raises(ValueError, match="unknown method 'gradcan'"):
        sightline.sanity(model, x, layer="features", methods="gradcan")
    with pytest.raises(ValueError, match=r"images\[0\]: expected uint8 \[64, 80, 3\]"):
        sightline.sanity(model, x, layer="features", methods="gradcam",
                         images=np.zeros((2, 8, 8, 3), np.uint8))
