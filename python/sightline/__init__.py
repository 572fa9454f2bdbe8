"""Sightline for PyTorch users: the C++ explanation engine (CAM, HiResCAM, the Grad-CAM family,
gradient and perturbation methods), its guarantees, dense CRF and evaluation, over torch tensors,
TorchScript modules and NumPy arrays. See docs/python.md.

Errors: bad arguments raise ValueError, other failures RuntimeError, each with the one-line
message the `sightline` command prints."""

import json
import os
import tempfile

import numpy as np
import torch  # first: the extension uses torch's Python types

from . import _sightline
from . import _engine
from .cams import (CAM, AblationCAM, BaseCAM, EigenCAM, EigenGradCAM, GradCAM, GradCAMElementWise,
                   GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM)
from .targets import ClassifierOutputTarget

__all__ = ["explain", "inspect", "audit", "sanity", "methods", "crf", "evaluate", "coco_eval", "ClassifierOutputTarget",
           "BaseCAM", "CAM", "HiResCAM", "GradCAM", "GradCAMElementWise", "GradCAMPlusPlus", "XGradCAM",
           "LayerCAM", "EigenCAM", "EigenGradCAM", "ScoreCAM", "AblationCAM"]


def explain(model, x, layer="layer4", method="hirescam", targets=None, raw=False, **options):
    """Maps of `method` (a registry key, see methods(); a list gives a dict by key) for the batch
    x [B, 3, H, W] (normalised, float32 used without a copy) at `layer` (dotted name, a submodule,
    or None for the model's features/head methods or its last 4-D activation).

    targets: None = each image's top class; an int = that class for every image; a list = one
    class (or ClassifierOutputTarget) per image; "topK" / "all" = several per image.
    Returns torch.float32 maps [B, H, W] in [0, 1] ([B, k, H, W] for "topK" / "all"), the same
    numbers as `sightline explain`; raw=True returns the raw maps instead (before ReLU,
    normalisation and resizing, at the layer's resolution for layer methods).
    options: the engine's (ig_steps, smooth_samples, score_batch, seed, ...)."""
    keys = [method] if isinstance(method, str) else list(method)
    result, one_map = _engine.run(model, x, layer, keys, targets, options)
    chosen = result["raw" if raw else "maps"]
    maps = {key: (chosen[key.lower()][:, 0] if one_map else chosen[key.lower()]) for key in keys}
    return maps[keys[0]] if isinstance(method, str) else maps


def inspect(model, layer="layer4", x=None, size=None):
    """What `sightline inspect --json` reports: the head analysis (kind, completeness residual,
    guarantees) and, per method, whether its guarantee holds. Checked at x (default: the CLI's
    seeded noise at the model's stored size, else `size` (H, W), else 224 x 224)."""
    if x is not None:
        x = _engine.as_input(x)
    script = model
    if not isinstance(model, torch.jit.ScriptModule):
        example = x
        if example is None:
            h, w = size or (224, 224)
            example = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
        script = _engine.script_module(model, example)
    name = _engine.model_name(script)
    report = _sightline.inspect(script, name, _engine.layer_name(model, layer), x,
                                tuple(size) if size is not None else None)
    return json.loads(report)


def audit(model, x, masks, layer="layer4", method="hirescam", context=None, target="label", class_names=None,
          thresholds=(0.3, 0.5), pointing_tolerance=0):
    """Does the model use the object? (as `sightline audit`, on tensors). x [B, 3, H, W] normalised;
    masks: one uint8 class-id mask per image ([B, h, w] or a list of [h, w]; model output i is id
    i + 1, 0 = background, 255 = ignore; maps are resized to the mask), context likewise (0 = no
    context) or None. Every class present in a mask is explained with `method` (target="label")
    or the image's top class is (target="predicted") and measured against that object.
    Returns audit.json's content: "trustworthy" and "guarantee" (does the method's guarantee hold
    for this model?), "classes" and "overall" (verdict, evidence, masses, IoU, pointing game) and
    "records" (one per image and class; "id" is the image's index)."""
    x = _engine.as_input(x)
    if x.dim() != 4 or x.size(0) == 0:
        _sightline.engine_input(x)  # its shape message
    mask_list = _mask_list(masks, "masks")
    context_list = [] if context is None else _mask_list(context, "context")
    found = _engine.engine(model, x, layer, {})
    report = found.audit(x, mask_list, context_list, str(method).lower(), str(target), list(class_names or []),
                         [float(t) for t in thresholds], int(pointing_tolerance))
    return json.loads(report)


def sanity(model, x, layer=None, methods=("saliency", "gradcam", "hirescam", "guidedbackprop", "guidedgradcam"),
           images=None, random_model=None, independent=False, depth=1, seed=0, batch=8,
           verdict_metric="spearman_abs", verdict_on="top", threshold=0.5, edges=True, random_logit=True,
           smooth_samples=0, smooth_noise=0.1):
    """Model- and data-randomisation sanity checks (Adebayo et al. 2018; as `sightline sanity`) on
    the batch x [B, 3, H, W] (B >= 2, normalised). The model is copied: yours is never changed.
    images: uint8 [B, H, W, 3] pictures of x for the Sobel edge-detector row (default: x's own
    min-max picture); random_model: the same architecture trained on shuffled labels; depth: an int
    or "layers" (every parameterised layer on its own); random_logit: Sixt et al.'s random-class
    test; smooth_samples >= 2: smooth MPRT over that many noisy copies (noise: smooth_noise of the
    input's range). Efficient MPRT (entropy rise) always runs.
    Returns sanity.json's content: "steps", per method the similarity curves (Spearman with and
    without absolute values, SSIM, HOG; mean, std and per image) and the "verdict"."""
    x = _engine.as_input(x)
    if x.dim() != 4 or x.size(0) == 0:
        _sightline.engine_input(x)
    script = _engine.script_module(model, x)
    shuffled = None if random_model is None else _engine.script_module(random_model, x)
    args = _sightline.SanityArgs()
    args.layer = _engine.layer_name(model, layer)
    args.methods = [methods.lower()] if isinstance(methods, str) else [m.lower() for m in methods]
    args.independent = bool(independent)
    args.depth = (1 << 30) if depth == "layers" else int(depth)
    args.seed = int(seed)
    args.batch = int(batch)
    args.verdict_metric = str(verdict_metric)
    args.verdict_on = str(verdict_on)
    args.threshold = float(threshold)
    args.edges = bool(edges)
    args.random_logit = bool(random_logit)
    args.smooth_samples = int(smooth_samples)
    args.smooth_noise = float(smooth_noise)
    pictures = [] if images is None else [_picture(p, i) for i, p in enumerate(images)]
    return json.loads(_sightline.sanity(script, _engine.model_name(script), x, pictures, shuffled, args))


def methods():
    """The registry: one dict per method (key, title, paper, needs_gradient, class_specific,
    guarantee, space), in `sightline list` order."""
    return _sightline.methods()


def crf(image, probs=None, labels=None, num_labels=0, confidence=0.7, gaussian=(3.0, 3.0),
        bilateral=(80.0, 13.0, 10.0), iterations=10, threads=0):
    """Dense CRF (as `sightline crf`): image uint8 [H, W, 3]; probs float32 [K, H, W] summing to 1
    over K, or labels uint8 [H, W] (255 = unknown) with num_labels and confidence. gaussian =
    (sxy, compat), bilateral = (sxy, srgb, compat). Returns the marginals Q, float32 [K, H, W]
    (argmax over K gives the labels)."""
    options = _sightline.DenseCrfOptions()
    options.gaussian_sxy, options.gaussian_compat = (float(v) for v in gaussian)
    options.bilateral_sxy, options.bilateral_srgb, options.bilateral_compat = (float(v) for v in bilateral)
    options.iterations = int(iterations)
    options.threads = int(threads)
    image = _as_array(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image: dtype {image.dtype}; expected uint8 colours [H, W, 3]")
    return _sightline.crf(image, _as_array(probs), _as_array(labels),
                          int(num_labels), float(confidence), options)


def evaluate(pred, gt, num_classes, ignore=255, names=None):
    """Confusion matrix and IoU / mIoU / Dice / accuracies (as `sightline eval`) of uint8 label
    masks: one pair of arrays, or two lists of pairs accumulated together. Returns a dict with
    "confusion" int64 [K, K + 1] (rows: ground truth; last column: predicted ignore), "iou" [K],
    "miou", "fg_miou", "mean_dice", "pixel_accuracy", "mean_accuracy", "fw_iou" and "per_class"."""
    preds = list(pred) if isinstance(pred, (list, tuple)) else [pred]
    gts = list(gt) if isinstance(gt, (list, tuple)) else [gt]
    preds = [_label_array(p, "pred") for p in preds]
    gts = [_label_array(g, "gt") for g in gts]
    return _sightline.evaluate(preds, gts, int(num_classes), int(ignore), list(names or []))


def coco_eval(gt_json, results_json, iou_type="segm"):
    """COCO AP / AR exactly as pycocotools' COCOeval (as `sightline eval --coco`). gt_json and
    results_json are file paths, or the parsed JSON (dict / list), written to a temporary file.
    Returns {"iou_type", "stats": {"AP", "AP50", ...}, "per_category", "summary"}."""
    with tempfile.TemporaryDirectory(prefix="sightline-coco-") as folder:
        gt_path = _json_file(gt_json, os.path.join(folder, "gt.json"))
        results_path = _json_file(results_json, os.path.join(folder, "results.json"))
        return _sightline.coco_eval(gt_path, results_path, iou_type)


def _as_array(value):
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().numpy()
    return np.asarray(value)


def _label_array(value, name):
    array = _as_array(value)
    if array.dtype != np.uint8:
        if array.dtype.kind not in "iub":
            raise ValueError(f"{name}: dtype {array.dtype}; expected integer class labels")
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(f"{name}: label {array.min() if array.min() < 0 else array.max()} is outside 0..255")
        array = array.astype(np.uint8)
    return array


def _mask_list(value, name):
    if isinstance(value, (list, tuple)):
        return [_label_array(m, f"{name}[{i}]") for i, m in enumerate(value)]
    array = _label_array(value, name)
    if array.ndim != 3:
        raise ValueError(f"{name}: {array.ndim} dimensions; expected [B, H, W] or a list of [H, W] masks")
    return list(array)


def _picture(value, i):
    array = _as_array(value)
    if array.dtype != np.uint8:
        raise ValueError(f"images[{i}]: dtype {array.dtype}; expected uint8 colours [H, W, 3]")
    return array


def _json_file(value, path):
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    with open(path, "w") as f:
        json.dump(value, f)
    return path
