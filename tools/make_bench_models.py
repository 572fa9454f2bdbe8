#!/usr/bin/python3
"""Writes torchvision ResNet-18 and ResNet-50 with random weights as traced TorchScript, for
`sightline bench explain`. Run with Debian's python3 (python3-torchvision):
    /usr/bin/python3 tools/make_bench_models.py OUT_DIR
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
    for name in ("resnet18", "resnet50"):
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
