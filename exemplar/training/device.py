"""Where training runs: the device choice and the mixed-precision context."""

from __future__ import annotations

import contextlib

import torch

from exemplar.errors import ExemplarError


def resolve_device(setting: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is a user error."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ExemplarError("train.device=cuda but no CUDA GPU is visible to torch. Fix: use train.device=auto or cpu.")
    return torch.device(setting)


def uses_amp(amp: bool, device: torch.device) -> bool:
    """Mixed precision is applied on CUDA only, so CPU runs keep their exact float32 arithmetic."""
    if not (amp and device.type == "cuda"):
        return False
    if not torch.cuda.is_bf16_supported():
        raise ExemplarError("train.amp=true needs a GPU with bfloat16 support (Ampere or newer). Fix: set train.amp=false.")
    return True


def autocast(enabled: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA when `enabled` (no loss scaling is needed for bfloat16); else a no-op."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def to_cpu(value: object) -> object:
    """Copy tensors in nested dicts/lists to the CPU, so checkpoints load on any machine."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(item) for item in value)
    return value
