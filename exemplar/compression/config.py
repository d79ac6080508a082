"""Compression settings (field names equal the keys of conf/compress/default.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exemplar.errors import ExemplarError

PRUNING_METHODS = ("oneshot", "gradual")
QUANTIZATION_KINDS = ("dynamic", "static")


@dataclass
class CompressConfig:
    """How each dense model of the population is compressed and measured.

    Pruning: every level of `sparsities` is reached either in one shot (then `finetune_epochs` of
    fine-tuning with the mask fixed, 0 for none) or gradually over `finetune_epochs` of fine-tuning
    with the Zhu & Gupta cubic schedule from `initial_sparsity`, updating the mask every
    `prune_every` steps and reaching the target after `prune_end_fraction` of the steps.
    Quantization: int8 "dynamic" (torchao, Linear layers) and/or "static" (PT2E, calibrated on
    `calibration_rows` training rows) of the dense model.
    """

    sparsities: list[float] = field(default_factory=lambda: [0.3, 0.5, 0.7, 0.9])
    method: str = "gradual"
    finetune_epochs: int = 2
    finetune_lr: float = 0.01
    initial_sparsity: float = 0.0
    prune_every: int = 2
    prune_end_fraction: float = 0.75
    quantization: list[str] = field(default_factory=lambda: ["dynamic", "static"])
    calibration_rows: int = 256
    batch_size: int = 512
    latency_repeats: int = 5
    threads: int = 0  # torch intra-op threads while compressing (0: leave torch's setting)

    def validate(self) -> None:
        """Raise ExemplarError naming the first bad setting and its fix (called before any training)."""
        for sparsity in self.sparsities:
            validate_sparsity(sparsity)
        validate_sparsity(self.initial_sparsity)
        _check(self.method in PRUNING_METHODS, f"compress.method must be one of {PRUNING_METHODS}, got '{self.method}'.")
        unknown = sorted(set(self.quantization) - set(QUANTIZATION_KINDS))
        _check(not unknown, f"compress.quantization has unknown kind(s) {unknown}; use a subset of {list(QUANTIZATION_KINDS)}.")
        _check(bool(self.sparsities or self.quantization), "compress.sparsities and compress.quantization are both empty: nothing to compare.")
        _check(self.finetune_epochs >= 0, f"compress.finetune_epochs must be >= 0, got {self.finetune_epochs}.")
        _check(self.method != "gradual" or self.finetune_epochs >= 1, "compress.method=gradual prunes while fine-tuning: set compress.finetune_epochs >= 1 (or use compress.method=oneshot).")
        _check(
            self.method != "gradual" or all(self.initial_sparsity <= s for s in self.sparsities),
            f"compress.initial_sparsity={self.initial_sparsity} exceeds a target in compress.sparsities={self.sparsities}. Fix: lower it (0.0 is usual).",
        )
        _check(self.finetune_lr > 0, f"compress.finetune_lr must be > 0, got {self.finetune_lr}.")
        _check(self.prune_every >= 1, f"compress.prune_every must be >= 1 step, got {self.prune_every}.")
        _check(0 < self.prune_end_fraction <= 1, f"compress.prune_end_fraction must be in (0, 1], got {self.prune_end_fraction}.")
        _check(self.calibration_rows >= 1, f"compress.calibration_rows must be >= 1, got {self.calibration_rows}.")
        _check(self.batch_size >= 1, f"compress.batch_size must be >= 1, got {self.batch_size}.")
        _check(self.latency_repeats >= 1, f"compress.latency_repeats must be >= 1, got {self.latency_repeats}.")
        _check(self.threads >= 0, f"compress.threads must be >= 0 (0: torch's default), got {self.threads}.")


def validate_sparsity(sparsity: float) -> None:
    """A pruning level is a fraction of weights removed, in [0, 1) (same rule as compression.magnitude)."""
    _check(0.0 <= sparsity < 1.0, f"sparsity must be in [0, 1), got {sparsity}. Fix: e.g. compress.sparsities=[0.3,0.5,0.9].")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ExemplarError(message)


def level_tag(sparsity: float) -> str:
    """Column suffix for a pruning level: 0.5 -> "p50", 0.925 -> "p92.5" -> "p92_5"."""
    percent = f"{sparsity * 100:g}".replace(".", "_")
    return f"p{percent}"


def quantization_tag(kind: str) -> str:
    """Column suffix for an int8 level: "dynamic" -> "int8_dynamic"."""
    return f"int8_{kind}"
