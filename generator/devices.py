"""Which device and dtype a pipeline runs on, and how an accelerator running out of memory looks.

- :func:`resolve_device` — ``[generator] device``: ``auto`` picks CUDA, then MPS, then CPU;
- :func:`resolve_dtype` — ``[generator] dtype``: ``auto`` is float16 on an accelerator and
  float32 on the CPU; ``fp16``/``bf16``/``fp32`` (and their long names) otherwise;
- :func:`is_out_of_memory` — recognises CUDA (or other accelerator) OOM errors, so the worker
  can split a batch instead of failing it.

torch is imported lazily, inside the functions.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from generator.errors import ModelLoadError, OutOfGPUMemory

if TYPE_CHECKING:
    import torch

_DTYPES = {
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp32": "float32",
    "float32": "float32",
}


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when available, else ``"mps"``, else ``"cpu"``."""
    import torch

    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    assert device is not None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(
            f"[generator] device is {device!r} but no CUDA device is available; "
            "set it to 'auto' or 'cpu'"
        )
    return device


def resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    """``None``/``"auto"`` -> float16 on CUDA/MPS, float32 on CPU; else fp16/bf16/fp32."""
    import torch

    if dtype in (None, "", "auto"):
        return torch.float32 if device == "cpu" else torch.float16
    assert dtype is not None
    name = _DTYPES.get(dtype.lower())
    if name is None:
        raise ModelLoadError(
            f"[generator] dtype {dtype!r} is not supported; use auto, fp16, bf16 or fp32"
        )
    return getattr(torch, name)  # type: ignore[no-any-return]


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA (or other accelerator) out-of-memory errors, by type or by message."""
    if isinstance(exc, OutOfGPUMemory):
        return True
    torch_mod = sys.modules.get("torch")
    if torch_mod is not None and isinstance(exc, torch_mod.cuda.OutOfMemoryError):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError | MemoryError) and "out of memory" in msg
