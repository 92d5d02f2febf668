"""Fixtures for Hub tests: a hand-laid Hugging Face cache, and the loopback Hub API test double.

Nothing here reaches the network: the cache fixture turns on offline mode, and the online fixtures point
``huggingface_hub`` at 127.0.0.1 (patching the constants it read from the environment at import).
"""

from __future__ import annotations

import pytest
import torch

import resnet_hub  # noqa: F401  (registers the variants with timm)
from hub_helpers import HubCache, safetensors_bytes


@pytest.fixture
def hf_constants(monkeypatch):
    """huggingface_hub's import-time settings, patchable per test; hub env overrides cleared."""
    from huggingface_hub import constants

    for var in ("RESNET_HUB_ORG", "RESNET_HUB_REVISION"):
        monkeypatch.delenv(var, raising=False)
    return constants


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, hf_constants) -> HubCache:
    """An empty offline cache (HF_HUB_OFFLINE=1); env is set too, for subprocesses."""
    root = tmp_path / "hf-cache"
    root.mkdir()
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return HubCache(root)


def point_hub_at(monkeypatch, constants, endpoint: str) -> None:
    """Online mode against ``endpoint`` (127.0.0.1 in tests)."""
    import huggingface_hub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    huggingface_hub.close_session()


@pytest.fixture
def hub_double(monkeypatch, hub_cache, hf_constants):
    """The loopback Hub API test double, with huggingface_hub online and pointed at it (empty cache)."""
    import huggingface_hub

    from hub_api_double import HubApiDouble

    with HubApiDouble() as double:
        point_hub_at(monkeypatch, hf_constants, double.url)
        yield double
        huggingface_hub.close_session()
    huggingface_hub.close_session()


@pytest.fixture
def unreachable_hub(monkeypatch, hub_cache, hf_constants) -> str:
    """Online mode, but the endpoint is a closed port on 127.0.0.1 (the network is 'down')."""
    import socket

    with socket.socket() as sock:  # reserve then release a port: nothing listens there afterwards
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    point_hub_at(monkeypatch, hf_constants, endpoint)
    yield endpoint
    import huggingface_hub

    huggingface_hub.close_session()


@pytest.fixture(scope="session")
def timm_resnet18():
    """timm's resnet18 with random weights and non-trivial BN stats, and its safetensors bytes."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("resnet18").eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model, safetensors_bytes(model)


@pytest.fixture(scope="session")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))
