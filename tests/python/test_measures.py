"""crf, evaluate and coco_eval over arrays: the CLI's / pydensecrf's / pycocotools' numbers."""

import json

import numpy as np
import pytest
from PIL import Image

import sightline

from conftest import ROOT, run_cli

CRF = ROOT / "tests" / "fixtures" / "densecrf"
COCO = ROOT / "tests" / "fixtures" / "cocoeval"


def test_crf_equals_the_cli_and_pydensecrf(tmp_path):
    image_file = CRF / "images" / "chelsea_449x299.png"
    probs_file = CRF / "probs" / "chelsea_449x299_K2.npy"
    image = np.asarray(Image.open(image_file).convert("RGB"))
    probs = np.load(probs_file)
    q = sightline.crf(image, probs, iterations=10)
    run_cli("crf", "--image", image_file, "--probs", probs_file, "--out", tmp_path, "--iterations", 10)
    assert np.array_equal(q, np.load(tmp_path / "chelsea_449x299.q.npy"))
    reference = np.load(CRF / "ref" / "chelsea_449x299_K2" / "Q_it10.npy")
    assert q.shape == reference.shape and np.abs(q - reference).max() <= 1e-4


def test_crf_bad_probabilities_are_value_errors():
    image = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"^probs: shape 2x4x4; expected \[K >= 2, 4, 5\] for the image$"):
        sightline.crf(image, np.full((2, 4, 4), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"^probs: "):
        sightline.crf(image, np.full((2, 4, 5), 0.7, np.float32))  # sums to 1.4
    with pytest.raises(ValueError, match=r"^image: dtype float32"):
        sightline.crf(image.astype(np.float32), np.full((2, 4, 5), 0.5, np.float32))


def test_evaluate_counts_a_known_confusion():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 1]], np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 255]], np.uint8)
    r = sightline.evaluate(pred, gt, num_classes=3)
    # rows: GT 0, 1, 2; columns: predicted 0, 1, 2, ignore
    assert r["confusion"].tolist() == [[1, 1, 0, 0], [0, 2, 0, 1], [1, 0, 1, 0]]
    assert r["iou"].tolist() == pytest.approx([1 / 3, 2 / 4, 1 / 2])
    assert r["miou"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)
    assert r["pixel_accuracy"] == pytest.approx(4 / 7) and r["ignored_pixels"] == 1
    both = sightline.evaluate([pred, pred], [gt, gt], num_classes=3)
    assert both["confusion"].tolist() == (2 * r["confusion"]).tolist()


def test_evaluate_bad_labels_are_value_errors():
    gt = np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError, match=r"^pred: label 5 at .* is not a class"):
        sightline.evaluate(np.full((2, 2), 5, np.uint8), gt, num_classes=3)
    with pytest.raises(ValueError, match=r"^pred: shape 2x3 but gt has shape 2x2$"):
        sightline.evaluate(np.zeros((2, 3), np.uint8), gt, num_classes=3)


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_coco_eval_equals_pycocotools(iou_type):
    manifest = json.loads((COCO / "manifest.json").read_text())
    for case in manifest["cases"][:2]:
        r = sightline.coco_eval(COCO / case["gt"], COCO / case["dt"], iou_type)
        stats = [r["stats"][name] for name in manifest["stats_order"]]
        assert stats == pytest.approx(case[f"stats_{iou_type}"], abs=1e-15)
    parsed = json.loads((COCO / case["dt"]).read_text())  # results made in code
    assert sightline.coco_eval(COCO / case["gt"], parsed, iou_type)["stats"] == r["stats"]
    with pytest.raises(ValueError, match=r"^--iou-type|keypoints"):
        sightline.coco_eval(COCO / case["gt"], parsed, "keypoints")
