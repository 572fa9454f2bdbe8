"""Shared by the Python API tests: the vendored fixtures, the built CLI, and running it."""

import os
import pathlib
import subprocess

import numpy as np
import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRADCAM = ROOT / "tests" / "fixtures" / "gradcam"


def cli_binary():
    """The `sightline` program ctest passes (SIGHTLINE_BINARY), else build/sightline."""
    path = pathlib.Path(os.environ.get("SIGHTLINE_BINARY", ROOT / "build" / "sightline"))
    if not path.exists():
        pytest.skip(f"{path}: the sightline program is not built (set SIGHTLINE_BINARY)")
    return path


def run_cli(*args, expect_ok=True):
    """Runs the CLI; returns the completed process (stdout, stderr as text)."""
    done = subprocess.run([str(cli_binary()), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
    if expect_ok:
        assert done.returncode == 0, done.stderr
    return done


def cli_error(*args):
    """The CLI's one-line error message, without the 'sightline: error: ' prefix."""
    done = run_cli(*args, expect_ok=False)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    prefix = "sightline: error: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix):]


@pytest.fixture(scope="session", autouse=True)
def two_threads():
    # The CLI runs with OMP_NUM_THREADS=2 under ctest: the same intra-op thread count here.
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))


def load_model(name):
    """A vendored TorchScript model of the pytorch-grad-cam fixtures ('gapnet', 'flatnet')."""
    return torch.jit.load(str(GRADCAM / f"{name}.pt"))


def load_input(name):
    """The fixture input of a model: float32 [2, 3, H, W]."""
    files = {"gapnet": "input_3x64x80.npy", "flatnet": "input_3x48x64.npy"}
    return torch.from_numpy(np.load(GRADCAM / files[name]))
