#!/usr/bin/env python3
"""Writes a traced torchvision ResNet-18 (random weights, eval mode) as TorchScript.

A plain-PyTorch stand-in for the peer's 47 MB resnet18.pt: the tests that need a real
torchvision graph (skip connections, Python-exported module names) make it with Debian's
python3-torchvision instead of keeping it in the repository.

Usage: make_torchvision_resnet18.py OUT.pt [--classes N] [--seed S] [--size S]
"""
import argparse

import torch
import torchvision


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=103)
    parser.add_argument("--size", type=int, default=64, help="side of the example input used for tracing")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = torchvision.models.resnet18(num_classes=args.classes).eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.randn(1, 3, args.size, args.size))
    traced.save(args.out)


if __name__ == "__main__":
    main()
