"""sightline.inspect() reports what `sightline inspect --json` reports."""

import json

import pytest

import sightline

from conftest import GRADCAM, load_model, run_cli


@pytest.mark.parametrize("model,size", [("gapnet", None), ("flatnet", (48, 64))])
def test_inspect_equals_the_clis_json(tmp_path, model, size):
    out = tmp_path / "inspect.json"
    run_cli("inspect", "--model", GRADCAM / f"{model}.pt", "--layer", "features", "--json", out,
            *(["--size", f"{size[0]}x{size[1]}"] if size else []))
    expected = json.loads(out.read_text())
    report = sightline.inspect(load_model(model), "features", size=size)
    assert report.pop("model") == {"gapnet": "GapNet", "flatnet": "FlatNet"}[model]
    expected.pop("model")
    assert report == expected


def test_the_guarantees_follow_the_head():
    gap = sightline.inspect(load_model("gapnet"), "features")
    flat = sightline.inspect(load_model("flatnet"), "features", size=(48, 64))
    assert gap["head"]["kind"] == "GAP -> Linear" or gap["methods"]["cam"]["holds"]
    assert gap["methods"]["gradcam"]["holds"] and gap["methods"]["hirescam"]["holds"]
    assert not flat["methods"]["gradcam"]["holds"] and flat["methods"]["hirescam"]["holds"]
    assert abs(flat["head"]["completeness_residual"]) < 1e-4
