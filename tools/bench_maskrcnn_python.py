#!/usr/bin/python3
"""torchvision's Mask R-CNN with the parity fixture's configuration and weights (ResNet-18 FPN,
4 classes, min_size 160, max_size 224, box_score_thresh 0.01), timed on the two images of
bench/bench_maskrcnn.cpp (the same formula, the same pixels): inference (eval, no_grad) or a
training step (train mode, the five losses summed, backward, SGD). Prints JSON
{"ms_per_step": ..., "detections": ...}; bench/compare_maskrcnn.sh pairs it with the C++ numbers.

    /usr/bin/python3 tools/bench_maskrcnn_python.py --weights build/maskrcnn-fixtures/state_dict.pth --mode infer
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_maskrcnn_fixtures import build  # noqa: E402  the fixture's exact model


def bench_image(h, w):
    y = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    x = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    c = torch.arange(3, dtype=torch.float32).view(3, 1, 1)
    img = 0.5 + 0.4 * torch.sin(0.07 * x + 0.11 * y + 2.0 * c)
    img[0, h // 5:h // 2, w // 4:w // 2] = 0.9
    img[2, h // 2:h - 10, w // 2:w - 5] = 0.1
    return img.contiguous()


def bench_targets(images):
    out = []
    for img in images:
        h, w = img.shape[1:]
        rects = [(1, h // 5, h // 2, w // 4, w // 2), (2, h // 2, h - 10, w // 2, w - 5)]
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        for k, (_, y0, y1, x0, x1) in enumerate(rects):
            masks[k, y0:y1, x0:x1] = 1
        out.append({"boxes": torch.tensor([[x0, y0, x1, y1] for _, y0, y1, x0, x1 in rects], dtype=torch.float32),
                    "labels": torch.tensor([r[0] for r in rects], dtype=torch.int64), "masks": masks})
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True)
    parser.add_argument("--mode", choices=["infer", "train"], default="infer")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = build()
    model.load_state_dict(torch.load(args.weights), strict=True)
    images = [bench_image(240, 320), bench_image(200, 180)]
    detections = 0
    if args.mode == "infer":
        model.eval()
        with torch.no_grad():
            detections = sum(len(d["boxes"]) for d in model(images))
            start = time.perf_counter()
            for _ in range(args.steps):
                model(images)
    else:
        model.train()
        targets = bench_targets(images)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=0.001, momentum=0.9, weight_decay=1e-4)
        torch.manual_seed(0)

        def step():
            optimizer.zero_grad()
            sum(model(images, targets).values()).backward()
            optimizer.step()

        step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
    ms = (time.perf_counter() - start) * 1000 / args.steps
    print(json.dumps({"ms_per_step": ms, "detections": detections}))


if __name__ == "__main__":
    main()
