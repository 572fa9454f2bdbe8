#!/usr/bin/python3
"""Makes the layer-cut fixtures: torchvision classifiers (random weights, seeded) saved as
TorchScript, and, for each (model, layer) case, what a plain autograd hook on the eager model
gives at that layer. Run with Debian's python3 (python3-torchvision):

    /usr/bin/python3 tools/make_layer_fixtures.py OUT_DIR

For each case OUT_DIR/<case>/ holds input.npy [B,3,H,W], activations.npy [B,K,h,w] (the layer's
output before any later in-place operation), gradients.npy (d logit[target] / d activations,
the head only: the backbone is detached at the layer, skip connections crossing it are
constants), logits.npy [B,C] and targets.npy [B] (top-1), and OUT_DIR/manifest.json lists the
cases. Reference CAMs follow from these by their definitions (HiResCAM sum_k g*A, Grad-CAM
sum_k mean(g)*A).
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision


class Backbone(nn.Module):
    """A user's nested backbone: stem and layer1..layer4 of a ResNet-18."""

    def __init__(self):
        super().__init__()
        r = torchvision.models.resnet18(weights=None)
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = r.layer1, r.layer2, r.layer3, r.layer4

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


class UserNet(nn.Module):
    """backbone -> pool -> fc, the shape of an ordinary PyTorch classifier."""

    def __init__(self, classes=7):
        super().__init__()
        self.backbone = Backbone()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.backbone(x)), 1))


class TwiceNet(nn.Module):
    """Calls one submodule twice: its output is ambiguous."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = self.block(self.block(self.stem(x)))
        return self.fc(x.mean((2, 3)))


class LoopNet(nn.Module):
    """Calls a submodule inside a loop whose trip count is data (only scripting keeps it)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 3)
        self.repeats = 2

    def forward(self, x):
        x = self.stem(x)
        for _ in range(self.repeats):
            x = self.block(x)
        return self.fc(x.mean((2, 3)))


class GuardNet(nn.Module):
    """Checks its input in forward (a branch that raises, before the layer) like many users' models."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError("expected a batch of images")
        x = self.block(torch.relu(self.stem(x)))
        if bool(x.isnan().any()):
            raise ValueError("NaN activations")
        return self.fc(x.mean((2, 3)))


def small_vgg11(classes):
    """torchvision's VGG-11 with a narrower classifier (the 4096-wide one is 120M parameters);
    the classifier keeps its in-place ReLUs, the features theirs."""
    m = torchvision.models.vgg11(weights=None)
    m.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 64), nn.ReLU(True), nn.Dropout(),
                                 nn.Linear(64, 64), nn.ReLU(True), nn.Dropout(), nn.Linear(64, classes))
    return m


def module_at(model, dotted):
    m = model
    for part in dotted.split("."):
        m = getattr(m, part)
    return m


def reference(model, layer, x):
    """The eager model's head-only gradient at `layer` through a forward hook."""
    store = {}

    def hook(_module, _inputs, output):
        a = output.detach().clone().requires_grad_(True)
        store["a"] = a
        # A copy continues the forward, so in-place operations after the layer (ReLU(inplace),
        # `out += identity`) act on the copy and leave the stored activations intact.
        return a * 1.0

    handle = module_at(model, layer).register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    targets = logits.argmax(1)
    score = logits.gather(1, targets[:, None]).sum()
    (grad,) = torch.autograd.grad(score, store["a"])
    return store["a"].detach(), grad, logits.detach(), targets


def save(path, array):
    np.save(path, np.ascontiguousarray(array.numpy()))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/layer-fixtures"
    os.makedirs(out, exist_ok=True)
    with open(__file__, "rb") as f:
        version = hashlib.sha256(f.read()).hexdigest()[:16]
    try:
        with open(os.path.join(out, "manifest.json")) as f:
            if json.load(f).get("script") == version:
                print(f"{out} is up to date")
                return
    except (OSError, ValueError):
        pass
    torch.manual_seed(0)
    models = {
        "resnet18": (torchvision.models.resnet18(weights=None, num_classes=10), 64),
        "vgg11": (small_vgg11(10), 64),
        "mobilenet_v2": (torchvision.models.mobilenet_v2(weights=None, num_classes=10), 64),
        "densenet121": (torchvision.models.densenet121(weights=None, num_classes=10), 64),
        "usernet": (UserNet(), 64),
        "guardnet": (GuardNet(), 16),
    }
    # (model, how it is saved, layer)
    cases = [
        ("resnet18", "trace", "layer4"), ("resnet18", "trace", "layer4.1"),
        ("resnet18", "trace", "layer3.1.conv2"), ("resnet18", "script", "layer4.1"),
        ("resnet18", "script", "layer3.1.conv2"), ("resnet18", "trace", "layer4.1.bn2"),
        ("vgg11", "trace", "features.18"),   # a convolution followed by ReLU(inplace=True)
        ("vgg11", "trace", "features.19"),   # the in-place ReLU itself
        ("vgg11", "trace", "features.20"),   # features[-1], pytorch-grad-cam's usual layer
        ("vgg11", "script", "features.18"),
        ("mobilenet_v2", "trace", "features.18"), ("mobilenet_v2", "trace", "features.17.conv"),
        ("densenet121", "trace", "features.denseblock4"), ("densenet121", "trace", "features.norm5"),
        ("usernet", "trace", "backbone.layer4"), ("usernet", "script", "backbone.layer4"),
        ("usernet", "trace", "backbone.layer4.1"),
        ("guardnet", "script", "block"), ("guardnet", "script", "stem"),
    ]
    manifest = {"script": version, "cases": [], "bad_models": {}}
    saved = set()
    for name, kind, layer in cases:
        model, size = models[name]
        model.eval()
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
        model_file = f"{name}_{kind}.pt"
        if model_file not in saved:
            with torch.no_grad():
                ts = torch.jit.trace(model, x[:1]) if kind == "trace" else torch.jit.script(model)
            ts.save(os.path.join(out, model_file))
            saved.add(model_file)
        a, g, logits, targets = reference(model, layer, x)
        case = f"{name}_{kind}_{layer.replace('.', '_')}"
        folder = os.path.join(out, case)
        os.makedirs(folder, exist_ok=True)
        save(os.path.join(folder, "input.npy"), x)
        save(os.path.join(folder, "activations.npy"), a)
        save(os.path.join(folder, "gradients.npy"), g)
        save(os.path.join(folder, "logits.npy"), logits)
        np.save(os.path.join(folder, "targets.npy"), targets.numpy().astype(np.int64))
        manifest["cases"].append({"case": case, "model_file": model_file, "layer": layer})
    x = torch.randn(1, 3, 16, 16)
    for cls, kind in ((TwiceNet, "trace"), (LoopNet, "script")):
        model = cls().eval()
        ts = torch.jit.trace(model, x) if kind == "trace" else torch.jit.script(model)
        file = f"{cls.__name__.lower()}_{kind}.pt"
        ts.save(os.path.join(out, file))
        manifest["bad_models"][cls.__name__] = file
    with open(os.path.join(out, "manifest.json.tmp"), "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(os.path.join(out, "manifest.json.tmp"), os.path.join(out, "manifest.json"))
    print(f"wrote {len(manifest['cases'])} cases to {out}")


if __name__ == "__main__":
    main()
