#!/usr/bin/python3
"""The training step of Sightline's built-in resnet_gap written in Python PyTorch.

Same architecture as src/model/architectures/resnet.cpp with the defaults (width 16, one basic
block per stage, output stride 8, GAP -> Linear), same batch (32 x 3 x 96 x 96, 6 classes),
SGD momentum 0.9, weight decay 5e-4, cross-entropy, torch.set_num_threads(2). Prints one JSON
line: {"ms_per_step": mean over the timed steps (as Google Benchmark reports), ...}. Run with Debian's /usr/bin/python3 (python3-torch).
Used by bench/compare_train.sh.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNetGap(nn.Module):
    def __init__(self, classes=6, width=16, output_stride=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        strides = [1, 2, 2, 2 if output_stride == 16 else 1]
        layers, cin = [], width
        for s in range(4):
            cout = width << s
            layers.append(BasicBlock(cin, cout, strides[s]))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        a = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(a.mean((2, 3)))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ResNetGap().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(6, (args.batch,))

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(json.dumps({"ms_per_step": 1000 * statistics.mean(times), "median_ms": 1000 * statistics.median(times),
                      "steps": args.steps,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
