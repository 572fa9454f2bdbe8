#!/usr/bin/python3
"""sightline.explain against pytorch-grad-cam's algorithm in plain PyTorch and a plain forward.

ResNet-50 (torchvision, random weights, eval mode), HiResCAM and Grad-CAM at layer4, batches of
1 and 8 at 224 x 224, one run. The peer's algorithm is pytorch-grad-cam 1.5.5's, step by step:
a forward hook keeps layer4's output and a tensor hook its gradient; the sum of the target
logits is back-propagated with loss.backward(retain_graph=True) through the whole model (every
parameter requires grad, as in the peer); then the method's rule, ReLU, min-max, bilinear resize,
min-max. Its maps are checked against sightline's (so both do the same work), then each is timed
(median of --repeats after --warmup calls) with the plain forward (torch.no_grad) as the unit.
Prints one JSON line per (method, batch). Run with Debian's /usr/bin/python3 and
PYTHONPATH=build/python.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision

import sightline


def minmax(maps):
    flat = maps.flatten(1)
    shifted = flat - flat.min(1, keepdim=True).values
    return (shifted / (1e-7 + shifted.max(1, keepdim=True).values)).view_as(maps)


def peer_maps(model, x, method):
    """pytorch-grad-cam's BaseCAM.forward for one target layer (model.layer4), in plain PyTorch."""
    store = {}

    def keep(module, inputs, output):
        store["activations"] = output.detach()
        output.register_hook(lambda grad: store.__setitem__("gradients", grad.detach()))

    handle = model.layer4.register_forward_hook(keep)
    try:
        outputs = model(x)
        targets = outputs.argmax(1)
        model.zero_grad()
        loss = sum(outputs[b, targets[b]] for b in range(x.shape[0]))
        loss.backward(retain_graph=True)
    finally:
        handle.remove()
    a, g = store["activations"], store["gradients"]
    if method == "hirescam":
        raw = (g * a).sum(1)
    else:
        raw = (g.mean((2, 3))[:, :, None, None] * a).sum(1)
    cams = minmax(torch.relu(raw))
    cams = F.interpolate(cams[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return minmax(cams)


def median_seconds(run, warmup, repeats):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default="1,8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    for batch in (int(b) for b in args.batches.split(",")):
        x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            scripted = torch.jit.trace(model, x)

        def forward():
            with torch.no_grad():
                model(x)

        forward_seconds = median_seconds(forward, args.warmup, args.repeats)
        for method in ("hirescam", "gradcam"):
            ours = sightline.explain(scripted, x, layer="layer4", method=method)
            difference = float((ours - peer_maps(model, x, method)).abs().max())
            sightline_seconds = median_seconds(
                lambda: sightline.explain(scripted, x, layer="layer4", method=method), args.warmup, args.repeats)
            peer_seconds = median_seconds(lambda: peer_maps(model, x, method), args.warmup, args.repeats)
            print(json.dumps({
                "model": "resnet50", "method": method, "batch": batch, "threads": args.threads,
                "forward_s": round(forward_seconds, 4), "sightline_s": round(sightline_seconds, 4),
                "pytorch_grad_cam_algorithm_s": round(peer_seconds, 4),
                "sightline_over_forward": round(sightline_seconds / forward_seconds, 2),
                "peer_over_forward": round(peer_seconds / forward_seconds, 2),
                "peer_over_sightline": round(peer_seconds / sightline_seconds, 2),
                "max_abs_map_difference": difference}), flush=True)


if __name__ == "__main__":
    main()
