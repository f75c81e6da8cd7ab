"""The about page says where images are made, truthfully (issue 15): never "this instance's
GPU" on an instance without one."""

from __future__ import annotations

import sys

import httpx
import pytest

from instance.web.pages import made_on

BROWSER = {"Accept": "text/html"}


def test_the_wording_follows_the_device() -> None:
    """cuda -> GPU, cpu -> CPU; auto -> whatever torch (when loaded) finds."""
    assert made_on("cuda") == made_on("cuda:1") == "this instance's GPU"
    assert made_on("cpu") == "this instance's CPU"
    import torch

    assert "torch" in sys.modules
    expected = "this instance's GPU" if torch.cuda.is_available() else "this instance's CPU"
    assert made_on("auto") == expected


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks a machine without CUDA"
)
async def test_a_cpu_only_instance_never_claims_a_gpu(live: str) -> None:
    """On this CPU-only machine the about page names the CPU and no GPU."""
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{live}/about", headers=BROWSER)
    assert r.status_code == 200
    assert "this instance&#39;s CPU" in r.text or "this instance's CPU" in r.text
    assert "GPU" not in r.text
