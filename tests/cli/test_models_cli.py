"""`resnet-hub list` / `info` run as the real console script."""

from __future__ import annotations

import json

import resnet_hub
from resnet_hub.zoo.stats import model_stats
from helpers.cli import run_cli


def test_list_json_reports_measured_params_and_gmacs():
    result = run_cli("list", "myresnet5*", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"myresnet50", "myresnet50d", "myresnet50_v1"}
    assert rows["myresnet50"]["params"] == 25_557_032
    assert abs(rows["myresnet50"]["gmacs"] - 4.09) < 0.01  # torchvision documents 4.09 GFLOPS (MACs)
    assert rows["myresnet50"]["pretrained_tags"] == ["a1_in1k", "tv2_in1k", "tv_in1k"]


def test_list_table_shows_every_variant():
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    for name in resnet_hub.variant_names():
        assert name in result.stdout


def test_info_shows_config_preprocessing_and_sources():
    result = run_cli("info", "myresnet50d.ra2_in1k", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["architecture"]["deep_stem"] is True and info["architecture"]["avg_down"] is True
    assert info["params"] == model_stats("myresnet50d").params
    [tag] = info["pretrained"]
    assert tag["hf_hub_id"] == "timm/resnet50d.ra2_in1k"
    assert tag["preprocessing"]["interpolation"] == "bicubic"
    assert tag["timm_pretrained_cfg"]["first_conv"] == "conv1.0"


def test_unknown_model_exits_non_zero_with_a_suggestion():
    result = run_cli("info", "myresnet5")
    assert result.returncode == 1
    assert "Unknown model 'myresnet5'" in result.stderr and "myresnet50" in result.stderr
    assert "Traceback" not in result.stderr
