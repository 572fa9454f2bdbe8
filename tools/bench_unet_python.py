#!/usr/bin/python3
"""The U-Net of src/segment/architectures.cpp ("unet", transposed-conv upsampling) in eager
Python PyTorch, with the same parameter names, for two jobs:

  timing   (default) training step (AdamW, cross-entropy with ignore 255) or inference
           (eval, no_grad) time, printed as JSON: bench/compare_unet.sh pairs it with
           bench_unet's C++ numbers.
  --check MODEL.pt  loads a model saved by `sightline train segment` (torch.jit.load), copies
           its weights into this eager module and prints the largest absolute difference of
           the two outputs on a fixed input: the benchmark compares the same network.

Run with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBnReLU(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.block1 = ConvBnReLU(cin, cout)
        self.block2 = ConvBnReLU(cout, cout)

    def forward(self, x):
        return self.block2(self.block1(x))


class Up(nn.Module):
    """2x2 stride-2 transposed conv halving the channels, concat [skip, up], DoubleConv."""

    def __init__(self, cin, cskip, cout):
        super().__init__()
        ref = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)  # PyTorch's default initialisation
        self.up_weight = nn.Parameter(ref.weight.detach().clone())
        self.up_bias = nn.Parameter(ref.bias.detach().clone())
        self.conv = DoubleConv(cin // 2 + cskip, cout)

    def forward(self, x, skip):
        u = F.conv_transpose2d(x, self.up_weight, self.up_bias, stride=2)
        return self.conv(torch.cat([skip, u], 1))


class UNet(nn.Module):
    def __init__(self, classes, base=16, depth=4):
        super().__init__()
        self.depth = depth
        self.inc = DoubleConv(3, base)
        for level in range(1, depth + 1):
            setattr(self, f"down{level}", DoubleConv(base << (level - 1), base << level))
        for level in range(depth, 0, -1):
            setattr(self, f"up{level}", Up(base << level, base << (level - 1), base << (level - 1)))
        self.outc = nn.Conv2d(base, classes, 1)

    def forward(self, x):
        xs = [self.inc(x)]
        for level in range(1, self.depth + 1):
            xs.append(getattr(self, f"down{level}")(F.max_pool2d(xs[-1], 2)))
        y = xs[-1]
        for level in range(self.depth, 0, -1):
            y = getattr(self, f"up{level}")(y, xs[level - 1])
        return self.outc(y)


def check(path):
    scripted = torch.jit.load(path)
    classes = len(scripted.sightline_class_names)
    depth = max(int(k[4]) for k, _ in scripted.named_parameters() if k.startswith("down"))
    base = scripted.inc.block1.conv.weight.shape[0]
    eager = UNet(classes, base, depth)
    missing, unexpected = eager.load_state_dict(scripted.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    eager.eval()
    scripted.eval()
    side = 1 << (depth + 1)
    x = torch.linspace(-2, 2, 2 * 3 * side * side).reshape(2, 3, side, side)
    with torch.no_grad():
        diff = (eager(x) - scripted(x)).abs().max().item()
    print(json.dumps({"classes": classes, "base": base, "depth": depth, "max_abs_diff": diff,
                      "parameters": sum(p.numel() for p in eager.parameters())}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--base", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--classes", type=int, default=7)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", help="a model.pt from `sightline train segment`")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.check:
        check(args.check)
        return
    torch.manual_seed(0)
    model = UNet(args.classes, args.base, args.depth)
    x = torch.randn(args.batch, 3, args.size, args.size)
    target = torch.randint(0, args.classes, (args.batch, args.size, args.size))
    target[:, :4, :] = 255  # an ignore band, as padding gives
    if args.mode == "train":
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=0.002, weight_decay=1e-4)

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), target, ignore_index=255)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x).argmax(1)
    step()  # warm-up
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    mean = sum(times) / len(times)  # as Google Benchmark's real_time: the mean of the timed loop
    print(json.dumps({"mode": args.mode, "ms_per_step": 1000 * mean, "images_per_s": args.batch / mean,
                      "best_ms": 1000 * min(times), "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
