#!/usr/bin/python3
"""The pytorch-grad-cam fixture's ResNet-18, remade without its 47 MB file. Run with Debian's python3:

    /usr/bin/python3 tools/make_gradcam_resnet18.py FIXTURES_DIR OUT_DIR

The fixture's model is torchvision's resnet18() made after torch.manual_seed(103), with every
BatchNorm's weight, bias and running statistics then randomised. Its conv and fc weights are
therefore the seed's; the 19220 BatchNorm values are vendored in
FIXTURES_DIR/gradcam/resnet18_batchnorm.pt. This script rebuilds the model, traces it to
OUT_DIR/resnet18.pt, and checks its logits on the vendored first input image against the
fixture's logits_resnet18.npy (exit 1 when they differ by more than 1e-4).
"""
import os
import sys

import numpy as np
import torch
import torchvision


def main(fixtures, out_dir):
    gradcam = os.path.join(fixtures, "gradcam")
    torch.set_num_threads(2)
    torch.manual_seed(103)
    model = torchvision.models.resnet18()
    state = model.state_dict()
    state.update(torch.load(os.path.join(gradcam, "resnet18_batchnorm.pt")))
    model.load_state_dict(state)
    model.eval()
    x = torch.from_numpy(np.load(os.path.join(gradcam, "input_3x224x224_first.npy")))
    with torch.no_grad():
        traced = torch.jit.trace(model, x)
        logits = traced(x).numpy()
    expected = np.load(os.path.join(gradcam, "logits_resnet18.npy"))[:1]
    diff = float(np.abs(logits - expected).max())
    if diff > 1e-4:
        print("make_gradcam_resnet18: logits differ from the fixture's by %g" % diff, file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    traced.save(os.path.join(out_dir, "resnet18.pt"))
    print("wrote %s (logits within %.2g of the fixture's)" % (os.path.join(out_dir, "resnet18.pt"), diff))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
