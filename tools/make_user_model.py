#!/usr/bin/python3
"""The example of docs/your-own-model.md: an ordinary PyTorch classifier with a nested backbone
(`backbone` holding layer1..layer4, then `pool` and `fc`), trained for a few seconds on a tiny
PASCAL-VOC-style folder that this script also writes, and traced to TorchScript.

    /usr/bin/python3 tools/make_user_model.py OUT_DIR

writes
    OUT_DIR/model.pt                       traced classifier, 2 outputs (circle, square), 64x64
                                           input normalised with mean 0.5, std 0.25 (not ImageNet)
    OUT_DIR/shapes/JPEGImages/<id>.png     64x64 scenes: one circle or square on a background
    OUT_DIR/shapes/SegmentationClass/<id>.png   palette masks: 0 background, 1 circle, 2 square,
                                           255 a one-pixel band around the object (as VOC)
    OUT_DIR/shapes/context/<id>.png        255 where the background's tint is (the whole image)
    OUT_DIR/shapes/ImageSets/Segmentation/{train,val}.txt
    OUT_DIR/shapes/labels.csv              header image,class
    OUT_DIR/shapes/classes.txt             background, circle, square

Circles sit on bluish backgrounds and squares on brownish ones in most training scenes: a
shortcut the audit can find. Debian's python3-torch and python3-pil only; about 10 s on 2 cores.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image

SIZE = 64
MEAN, STD = 0.5, 0.25
CLASSES = ["background", "circle", "square"]
TINTS = {1: (70, 110, 200), 2: (150, 100, 60)}  # the background colour that goes with each class


class Block(torch.nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(torch.relu(self.conv1(x))))


class Backbone(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer1 = Block(3, 16, 2)
        self.layer2 = Block(16, 32, 2)
        self.layer3 = Block(32, 32, 1)
        self.layer4 = Block(32, 64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class UserNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = Backbone()
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(64, len(CLASSES) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.backbone(x)), 1))


def scene(rng: np.random.Generator, cls: int, matched: bool):
    """An RGB image, its class mask (with a 255 band) and its context mask."""
    tint = np.array(TINTS[cls if matched else 3 - cls], dtype=np.float64)
    image = np.clip(tint + rng.normal(0, 18, (SIZE, SIZE, 3)), 0, 255)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    r = rng.integers(9, 15)
    cy, cx = rng.integers(r + 2, SIZE - r - 2, 2)
    if cls == 1:
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        outer = (yy - cy) ** 2 + (xx - cx) ** 2 <= (r + 1) ** 2
    else:
        inside = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        outer = (abs(yy - cy) <= r + 1) & (abs(xx - cx) <= r + 1)
    image[inside] = rng.integers(200, 256, 3)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[outer] = 255
    mask[inside] = cls
    context = np.full((SIZE, SIZE), 255, np.uint8)  # 255 on the object too: the audit takes the object first
    return image.astype(np.uint8), mask, context


def write_palette(path: str, mask: np.ndarray) -> None:
    img = Image.fromarray(mask, mode="P")
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0, 0, 0] * 252 + [224, 224, 192]
    img.putpalette(palette)
    img.save(path)


def write_dataset(root: str, rng: np.random.Generator):
    for sub in ("JPEGImages", "SegmentationClass", "context", "ImageSets/Segmentation"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    rows, splits, data = ["image,class"], {"train": [], "val": []}, {"train": [], "val": []}
    for split, count in (("train", 48), ("val", 12)):
        for i in range(count):
            cls = 1 + i % 2
            matched = split == "train" and i % 8 != 0 or split == "val" and i < 6
            name = f"{split}_{i:03d}_{CLASSES[cls]}"
            image, mask, context = scene(rng, cls, matched)
            Image.fromarray(image).save(os.path.join(root, "JPEGImages", name + ".png"))
            write_palette(os.path.join(root, "SegmentationClass", name + ".png"), mask)
            Image.fromarray(context, mode="L").save(os.path.join(root, "context", name + ".png"))
            rows.append(f"{name}.png,{CLASSES[cls]}")
            splits[split].append(name)
            data[split].append((image, cls - 1))
    for split, names in splits.items():
        with open(os.path.join(root, "ImageSets/Segmentation", split + ".txt"), "w") as f:
            f.write("\n".join(names) + "\n")
    with open(os.path.join(root, "labels.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    return data


def to_batch(items):
    x = torch.tensor(np.stack([im for im, _ in items]), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    return (x - MEAN) / STD, torch.tensor([c for _, c in items])


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "user-model"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    data = write_dataset(os.path.join(out, "shapes"), np.random.default_rng(0))
    with open(os.path.join(out, "classes.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    model = UserNet()
    x, y = to_batch(data["train"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    vx, vy = to_batch(data["val"])
    with torch.no_grad():
        accuracy = (model(vx).argmax(1) == vy).float().mean().item()
        traced = torch.jit.trace(model, torch.zeros(1, 3, SIZE, SIZE))
    path = os.path.join(out, "model.pt")
    traced.save(path + ".tmp")
    os.replace(path + ".tmp", path)
    print(f"wrote {path} (train loss {loss.item():.3f}, val accuracy {accuracy:.2f}) and {out}/shapes/")


if __name__ == "__main__":
    main()
