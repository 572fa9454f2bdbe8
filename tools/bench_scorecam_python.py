#!/usr/bin/python3
"""Score-CAM as pytorch-grad-cam 1.5.5 computes it, timed on this machine.

The peer library is not packaged for Debian, so this script follows its published algorithm
step by step (Wang et al. 2020 as the library implements it): layer activations from one
forward; each channel upsampled with UpsamplingBilinear2d (align_corners) to the input size,
min-max scaled with eps 1e-8; the input times each mask, run through the whole model in
batches of 16; the target's logit per channel; weights = softmax over channels; map =
relu(sum_k w_k A_k), min-max scaled, resized with cv2-style half-pixel bilinear. It checks its
maps against the peer's fixture (so the timed work is the peer's work) and prints one JSON
line with the seconds. Run with Debian's /usr/bin/python3. Used by bench/compare_scorecam.sh.
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F


def layer4_activations(model, x):
    y = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(y))))


def score_cam(model, x, batch_size):
    with torch.no_grad():
        logits = model(x)
        targets = logits.argmax(1)
        acts = layer4_activations(model, x)
        up = torch.nn.UpsamplingBilinear2d(size=x.shape[-2:])(acts)
        flat = up.flatten(2)
        lo = flat.min(2).values[:, :, None, None]
        hi = flat.max(2).values[:, :, None, None]
        up = (up - lo) / (hi - lo + 1e-8)
        masked = x[:, None] * up[:, :, None]
        maps = []
        for b in range(x.shape[0]):
            scores = []
            for i in range(0, masked.shape[1], batch_size):
                out = model(masked[b, i:i + batch_size])
                scores.extend(out[:, targets[b]].tolist())
            w = torch.softmax(torch.tensor(scores), 0)
            cam = torch.relu((w[:, None, None] * acts[b]).sum(0))
            cam = cam - cam.min()
            cam = cam / (1e-7 + cam.max())
            cam = F.interpolate(cam[None, None], size=x.shape[-2:], mode="bilinear",
                                align_corners=False)[0, 0]
            cam = cam - cam.min()
            maps.append((cam / (1e-7 + cam.max())).numpy())
    return np.stack(maps)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixtures", required=True)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = torch.jit.load(f"{args.fixtures}/resnet18.pt").eval()
    x = torch.from_numpy(np.load(f"{args.fixtures}/input_3x224x224.npy"))
    start = time.perf_counter()
    maps = score_cam(model, x, args.batch)
    seconds = time.perf_counter() - start
    peer = np.load(f"{args.fixtures}/resnet18__ScoreCAM__top1.npy")
    print(json.dumps({"seconds": round(seconds, 3), "images": int(x.shape[0]),
                      "max_abs_diff_vs_fixture": float(np.abs(maps - peer).max())}))


if __name__ == "__main__":
    main()
