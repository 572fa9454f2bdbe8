#!/usr/bin/python3
"""Writes torchvision classifiers with random weights as traced TorchScript, for
`sightline bench explain`: ResNet-18/50 (explained at layer4), VGG-16, DenseNet-121 and
MobileNet-v2 (at features). Run with Debian's python3 (python3-torchvision):
    /usr/bin/python3 tools/make_bench_models.py OUT_DIR [NAME...]
"""
import os
import sys

import torch
import torchvision


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "build/bench-models"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    example = torch.randn(1, 3, 224, 224)
    names = sys.argv[2:] or ["resnet18", "resnet50", "vgg16", "densenet121", "mobilenet_v2"]
    for name in names:
        path = os.path.join(out, f"{name}.pt")
        if os.path.exists(path):
            continue
        model = getattr(torchvision.models, name)(weights=None).eval()
        with torch.no_grad():
            traced = torch.jit.trace(model, example)
        traced.save(path + ".tmp")
        os.replace(path + ".tmp", path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
