#!/usr/bin/python3
"""Mask R-CNN parity fixtures: torchvision's model with seeded random weights, run in eval mode.
Run with Debian's python3 (python3-torchvision):

    /usr/bin/python3 tools/make_maskrcnn_fixtures.py OUT_DIR

writes OUT_DIR/state_dict.pth (torch.save(model.state_dict()), an OrderedDict, as users save it),
OUT_DIR/reference.pth (a dict: image<i> [3,H,W] in [0,1]; proposals<i> [P,4] = model.rpn's output;
boxes<i>, labels<i>, scores<i>, masks<i> = the model's detections; target_boxes<i>,
target_labels<i>, target_masks<i> = two ground-truth objects per image and loss_objectness,
loss_rpn_box_reg, loss_classifier, loss_box_reg, loss_mask = the training losses on them, in train
mode right after torch.manual_seed(loss_seed); multi_<loss> the same with the multi-scale training
tuple multi_min_sizes, right after torch.manual_seed(loss_seed + 1); small_<loss> the same with the
proposal counts and sampler sizes of small_samplers, right after torch.manual_seed(loss_seed + 2)) and
OUT_DIR/config.json (the model's
configuration, which the C++ test builds, loss_seed and threads, the thread count the reference
was computed with).

The weights are torchvision's initialisation with three changes so that a wrong implementation
cannot pass by accident: the frozen batch norms get random statistics (torchvision's are the
identity), the RPN's objectness/box convs and the box/mask predictors are scaled up (torchvision's
tiny initial values give near-constant scores and masks at 0.5).

    /usr/bin/python3 tools/make_maskrcnn_fixtures.py --check-load FILE OUT_DIR

builds the same model, loads FILE with load_state_dict(strict=True) and checks every tensor equals
OUT_DIR/state_dict.pth's: what the C++ test runs on a state_dict written by Sightline.
"""
import json
import os
import sys

import torch
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.misc import FrozenBatchNorm2d

MULTI_MIN_SIZES = (96, 128, 160)  # a multi-scale training tuple; evaluation would use its last
# Fewer proposals and sampled anchors / RoIs than torchvision's defaults (MaskRCNN's keywords).
SMALL_SAMPLERS = {"rpn_pre_nms_top_n_train": 300, "rpn_post_nms_top_n_train": 100,
                  "rpn_batch_size_per_image": 32, "box_batch_size_per_image": 64}
CONFIG = {"depth": 18, "num_classes": 4, "min_size": 160, "max_size": 224, "box_score_thresh": 0.01}
LOSS_SEED = 7
# Float sums are split across threads, so another thread count rounds differently (up to 1e-3 px
# on boxes seen on a CI machine with more cores). The C++ test runs with the count recorded here.
THREADS = 2
IMAGE_SIZES = [(120, 150), (100, 90)]  # (H, W): resized to 160x200 and 160x144, padded to 160x224


def build():
    backbone = resnet_fpn_backbone(backbone_name="resnet%d" % CONFIG["depth"], weights=None, trainable_layers=3)
    return MaskRCNN(backbone, num_classes=CONFIG["num_classes"], min_size=CONFIG["min_size"],
                    max_size=CONFIG["max_size"], box_score_thresh=CONFIG["box_score_thresh"])


def randomise(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, FrozenBatchNorm2d):
                n = m.weight.numel()
                m.weight.copy_(torch.empty(n).uniform_(0.7, 1.3))
                m.bias.copy_(torch.randn(n) * 0.1)
                m.running_mean.copy_(torch.randn(n) * 0.1)
                m.running_var.copy_(torch.empty(n).uniform_(0.7, 1.3))
        model.rpn.head.cls_logits.weight.mul_(30)
        model.rpn.head.bbox_pred.weight.mul_(10)
        model.roi_heads.box_predictor.cls_score.weight.mul_(3)
        model.roi_heads.box_predictor.bbox_pred.weight.mul_(3)
        model.roi_heads.mask_predictor.mask_fcn_logits.weight.mul_(3)


def rectangles(h, w):
    """The two objects of an image: (label, y0, y1, x0, x1, colour)."""
    return [(1, h // 5, h // 2, w // 4, w // 2, (0.9, 0.2, 0.1)), (2, h // 2, h - 10, w // 2, w - 5, (0.1, 0.8, 0.9))]


def images():
    out = []
    for h, w in IMAGE_SIZES:
        # Smooth colour blobs (low-resolution noise upsampled) plus two bright rectangles.
        low = torch.rand(1, 3, h // 10, w // 10)
        img = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)[0]
        for _, y0, y1, x0, x1, colour in rectangles(h, w):
            img[:, y0:y1, x0:x1] = torch.tensor(colour)[:, None, None]
        out.append(img.contiguous())
    return out


def targets():
    out = []
    for h, w in IMAGE_SIZES:
        rects = rectangles(h, w)
        masks = torch.zeros(len(rects), h, w, dtype=torch.uint8)
        for k, (_, y0, y1, x0, x1, _) in enumerate(rects):
            masks[k, y0:y1, x0:x1] = 1
        out.append({"boxes": torch.tensor([[x0, y0, x1, y1] for _, y0, y1, x0, x1, _ in rects], dtype=torch.float32),
                    "labels": torch.tensor([r[0] for r in rects], dtype=torch.int64), "masks": masks})
    return out


def record_losses(model, imgs, gts, seed, prefix, ref):
    """The training losses right after torch.manual_seed(seed), stored as ref[prefix + name]."""
    torch.manual_seed(seed)
    with torch.no_grad():
        losses = model(imgs, gts)
    for key, value in losses.items():
        ref[prefix + key] = value
    print(prefix + "losses: " + ", ".join("%s %.5f" % (k, v) for k, v in losses.items()))


def make(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = build()
    randomise(model)
    model.eval()
    imgs = images()
    captured = {}
    model.rpn.register_forward_hook(lambda module, inputs, output: captured.update(proposals=output[0]))
    with torch.no_grad():
        detections = model(imgs)
    ref = {}
    for i, (img, det) in enumerate(zip(imgs, detections)):
        ref["image%d" % i] = img
        ref["proposals%d" % i] = captured["proposals"][i]
        for key in ("boxes", "labels", "scores", "masks"):
            ref["%s%d" % (key, i)] = det[key]
        print("image %d: %d proposals, %d detections, scores %.3f..%.3f, masks mean %.3f" % (
            i, len(captured["proposals"][i]), len(det["boxes"]), det["scores"].min(), det["scores"].max(),
            det["masks"].mean()))
    model.train()
    gts = targets()
    torch.manual_seed(LOSS_SEED)
    with torch.no_grad():
        losses = model(imgs, gts)
    for i, gt in enumerate(gts):
        for key in ("boxes", "labels", "masks"):
            ref["target_%s%d" % (key, i)] = gt[key]
    for key, value in losses.items():
        ref[key] = value
    print("losses: " + ", ".join("%s %.5f" % (k, v) for k, v in losses.items()))
    # Multi-scale training: each image's short side drawn from a tuple (torch_choice).
    model.transform.min_size = MULTI_MIN_SIZES
    record_losses(model, imgs, gts, LOSS_SEED + 1, "multi_", ref)
    model.transform.min_size = (CONFIG["min_size"],)
    # The same model with smaller proposal counts and samplers (what MaskRCNN(..., **SMALL_SAMPLERS) sets).
    model.rpn._pre_nms_top_n["training"] = SMALL_SAMPLERS["rpn_pre_nms_top_n_train"]
    model.rpn._post_nms_top_n["training"] = SMALL_SAMPLERS["rpn_post_nms_top_n_train"]
    model.rpn.fg_bg_sampler.batch_size_per_image = SMALL_SAMPLERS["rpn_batch_size_per_image"]
    model.roi_heads.fg_bg_sampler.batch_size_per_image = SMALL_SAMPLERS["box_batch_size_per_image"]
    record_losses(model, imgs, gts, LOSS_SEED + 2, "small_", ref)
    torch.save(model.state_dict(), os.path.join(out_dir, "state_dict.pth"))
    torch.save(ref, os.path.join(out_dir, "reference.pth"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(dict(CONFIG, image_sizes=IMAGE_SIZES, loss_seed=LOSS_SEED, threads=THREADS,
                       multi_min_sizes=list(MULTI_MIN_SIZES), small_samplers=SMALL_SAMPLERS), f, indent=1)


def check_load(path, out_dir):
    model = build()
    model.load_state_dict(torch.load(path), strict=True)
    expected = torch.load(os.path.join(out_dir, "state_dict.pth"))
    got = model.state_dict()
    bad = [k for k in expected if not torch.equal(expected[k], got[k])]
    if bad:
        print("differs from the fixture: " + ", ".join(bad))
        sys.exit(1)
    print("ok: %d tensors loaded with strict=True" % len(got))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--check-load":
        check_load(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 2:
        make(sys.argv[1])
    else:
        sys.exit(__doc__)
