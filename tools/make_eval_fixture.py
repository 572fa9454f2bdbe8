#!/usr/bin/python3
"""Writes tests/data/evaluate/: a few small ground-truth / predicted mask pairs and the numpy
reference for `sightline eval` (one np.bincount confusion matrix over the whole set, as the
PASCAL VOC devkit and mmsegmentation accumulate it, and the metrics derived from it).

Run with Debian's python (numpy only; PNGs are encoded here with zlib):
    /usr/bin/python3 tools/make_eval_fixture.py

Conventions (see include/sightline/evaluate.hpp): GT == 255 is not counted; a prediction of
255 on a labelled pixel is a miss (column K of the K x (K+1) matrix); classes absent from both
GT and prediction get NaN (null in JSON) and are left out of the means (nanmean).
"""
import json
import os
import struct
import zlib

import numpy as np

K = 6
IGNORE = 255
NAMES = ["background", "cat", "dog", "boat", "water", "tree"]
# Class 3 (boat) appears only in the GT (always predicted as dog), class 4 (water) only in the
# predictions, class 5 (tree) in neither: IoU 0, 0 and NaN.
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "evaluate")


def voc_palette():
    pal = []
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return bytes(pal)


def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png(path, labels, palette):
    """8-bit palette (colour type 3, VOC colours) or grey (colour type 0) PNG of uint8 labels."""
    h, w = labels.shape
    raw = b"".join(b"\x00" + labels[r].tobytes() for r in range(h))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3 if palette else 0, 0, 0, 0))
    if palette:
        png += chunk(b"PLTE", voc_palette())
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def scene(rng, h, w):
    """A structured GT mask (blobs on background, a void band at their borders) and a
    prediction made from it with shifted, confused, noisy and unlabelled regions."""
    gt = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for cls in rng.choice([1, 2, 3], size=rng.integers(1, 4), replace=True):
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        ry, rx = rng.integers(1, max(2, h // 2)), rng.integers(1, max(2, w // 2))
        if rng.random() < 0.5:
            gt[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = cls
        else:
            gt[max(0, cy - ry):cy + ry, max(0, cx - rx):cx + rx] = cls
    # VOC-style void band: pixels whose right or lower neighbour has another class.
    edge = np.zeros_like(gt, bool)
    edge[:, :-1] |= gt[:, :-1] != gt[:, 1:]
    edge[:-1, :] |= gt[:-1, :] != gt[1:, :]
    gt[edge] = IGNORE

    pred = np.where(gt == IGNORE, 0, gt).astype(np.uint8)
    pred = np.roll(pred, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1))
    pred[pred == 3] = 2                          # boat always predicted as dog
    noise = rng.random((h, w)) < 0.05
    pred[noise] = rng.integers(0, 3, size=noise.sum())
    y0, x0 = rng.integers(0, h), rng.integers(0, w)
    pred[y0:y0 + max(1, h // 5), x0:x0 + max(1, w // 5)] = 4  # "water" where there is none
    y1, x1 = rng.integers(0, h), rng.integers(0, w)
    pred[y1:y1 + max(1, h // 6), x1:x1 + max(1, w // 6)] = IGNORE  # unlabelled prediction
    return gt, pred


def reference(pairs):
    """Confusion matrix over all pairs (np.bincount, as VOC / mmsegmentation) and metrics."""
    conf = np.zeros((K, K + 1), np.int64)
    ignored = 0
    for gt, pred in pairs:
        gt = gt.astype(np.int64).ravel()
        pred = pred.astype(np.int64).ravel()
        valid = gt != IGNORE
        ignored += int((~valid).sum())
        p = pred[valid].copy()
        p[p == IGNORE] = K
        conf += np.bincount(gt[valid] * (K + 1) + p, minlength=K * (K + 1)).reshape(K, K + 1)
    tp = np.diag(conf[:, :K]).astype(np.float64)
    t = conf.sum(1).astype(np.float64)
    pp = conf[:, :K].sum(0).astype(np.float64)
    union = t + pp - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = tp / union
        dice = 2 * tp / (t + pp)
        acc = tp / t
        prec = tp / pp
        fp_ratio = (pp - tp) / union
        fn_ratio = (t - tp) / union
    freq = t / t.sum()
    metrics = {
        "miou": np.nanmean(iou),
        "fg_miou": np.nanmean(iou[1:]),
        "mean_dice": np.nanmean(dice),
        "pixel_accuracy": tp.sum() / t.sum(),
        "mean_accuracy": np.nanmean(acc),
        "fw_iou": (freq[freq > 0] * iou[freq > 0]).sum(),
        "pixels": int(t.sum()),
        "ignored_pixels": ignored,
    }
    per_class = []
    for i in range(K):
        per_class.append({
            "name": NAMES[i], "tp": int(tp[i]), "fp": int(pp[i] - tp[i]), "fn": int(t[i] - tp[i]),
            "gt_pixels": int(t[i]), "pred_pixels": int(pp[i]), "iou": iou[i], "dice": dice[i],
            "accuracy": acc[i], "precision": prec[i], "fp_ratio": fp_ratio[i], "fn_ratio": fn_ratio[i],
        })
    metrics["per_class"] = per_class
    return conf, metrics


def clean(x):
    """NaN -> None, numpy scalars -> Python numbers (json writes the shortest exact repr)."""
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if np.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def main():
    rng = np.random.default_rng(20240604)
    os.makedirs(os.path.join(OUT, "gt"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "pred"), exist_ok=True)
    sizes = {"img_a": (17, 31), "img_b": (48, 64), "img_c": (37, 50), "img_d": (1, 9), "img_e": (40, 40)}
    pairs, images = [], []
    for i, (name, (h, w)) in enumerate(sizes.items()):
        gt, pred = scene(rng, h, w)
        # Mixed encodings: img_e's GT is a grey PNG, img_c's prediction too.
        write_png(os.path.join(OUT, "gt", name + ".png"), gt, palette=name != "img_e")
        write_png(os.path.join(OUT, "pred", name + ".png"), pred, palette=name != "img_c")
        pairs.append((gt, pred))
        conf, m = reference([(gt, pred)])
        images.append({"id": name, "confusion": conf.tolist(), "miou": m["miou"],
                       "fg_miou": m["fg_miou"], "pixel_accuracy": m["pixel_accuracy"]})
    conf, metrics = reference(pairs)
    assert np.isnan(metrics["per_class"][5]["iou"]) and metrics["per_class"][4]["iou"] == 0
    assert metrics["per_class"][3]["iou"] == 0 and conf[:, K].sum() > 0 and metrics["ignored_pixels"] > 0
    doc = {"num_classes": K, "ignore": IGNORE, "names": NAMES, "ids": list(sizes),
           "confusion": conf.tolist(), "metrics": metrics, "per_image": images}
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(clean(doc), f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "classes.txt"), "w") as f:
        f.write("\n".join(NAMES) + "\n")
    print("miou", metrics["miou"], "confusion\n", conf)


if __name__ == "__main__":
    main()
