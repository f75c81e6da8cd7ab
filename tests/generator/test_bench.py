"""run_bench on CPU with builtin:tiny: the report's shape only (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.bench import BenchReport, run_bench


@pytest.mark.parametrize("prompt_embeds", [False, True])
def test_cpu_bench_report_shape(cache_dir: Path, prompt_embeds: bool) -> None:
    seen: list[str] = []
    report = run_bench(
        "builtin:tiny", cache_dir=cache_dir, batch_sizes=(2,), steps=1, size=32,
        iterations=1, device="cpu", prompt_embeds=prompt_embeds, progress=seen.append,
    )
    assert isinstance(report, BenchReport)
    assert (report.model, report.device, report.dtype) == ("builtin:tiny", "cpu", "float32")
    assert report.batch_sizes == [1, 2] and report.compiled is False
    assert list(report.results) == ["dreamloom", "diffusers"]
    for name, res in report.results.items():
        assert res.name == name
        assert set(res.throughput) == {1, 2} and all(v > 0 for v in res.throughput.values())
        assert res.latency_ms > 0 and len(res.latency_samples_ms) == 1
        assert res.load_to_first_image_s >= res.load_s >= 0
    assert report.results["dreamloom"].process_start_to_first_image_s is not None
    assert report.results["diffusers"].process_start_to_first_image_s is None
    assert report.latency_speedup is not None and report.latency_speedup > 0
    assert set(report.throughput_speedup) == {1, 2}
    assert report.notes and "CPU run" in report.notes[0]
    data = json.loads(json.dumps(report.to_json()))
    assert set(data["results"]["dreamloom"]["throughput"]) == {"1", "2"}
    assert any(s.startswith("dreamloom:") for s in seen)


def test_unknown_path_is_refused(cache_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown benchmark path 'tensorrt'"):
        run_bench("builtin:tiny", cache_dir=cache_dir, paths=("tensorrt",), device="cpu")


def test_sd_turbo_random_has_the_real_architecture() -> None:
    """Parameter counts of the SD 2.1 UNet and the SD VAE, built on the meta device."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from generator.tiny import SD21_UNET_CONFIG, SD_VAE_CONFIG

    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD21_UNET_CONFIG)
        vae = AutoencoderKL(**SD_VAE_CONFIG)
    assert sum(p.numel() for p in unet.parameters()) == 865_910_724
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863
