"""Training settings (one dataclass; entry points build it from Hydra's config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exemplar.errors import ExemplarError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda")
MAX_EPOCHS = 100_000
MAX_SEED = 2**31 - 1


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    step_epochs: int = 10  # for schedule=step: multiply lr by step_gamma every step_epochs
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    checkpoint_every: int = 2  # save every N epochs (the final epoch is always saved)
    checkpoint_epochs: list[int] = field(default_factory=list)  # or exactly these epochs (1-based)
    seed: int = 0
    crop_padding: int = 0  # random crop with this much zero padding (images only)
    hflip: bool = False  # random horizontal flips (images only)
    eval_batch_size: int = 512
    population: int = 1  # models trained, with seeds seed, seed + 1, ...; compression compares them
    device: str = "auto"  # auto: cuda when available, else cpu
    amp: bool = False  # bfloat16 mixed precision; used on CUDA only (CPU runs stay exact float32)
    ensemble: bool = True  # train the population as one vectorised ensemble (models without batch norm)
    crossfit_folds: int = 2  # cross-fitted population for out-of-sample CIE: K folds ...
    crossfit_repeats: int = 4  # ... times R repeats = R * K models; each training row is held out by R

    # settings that do not change what one seed's model learns (left out of its resume fingerprint)
    POPULATION_KEYS = ("population", "ensemble", "crossfit_folds", "crossfit_repeats")

    def validate(self) -> None:
        """Raise ExemplarError naming the first bad setting and its fix."""
        if not 1 <= self.population <= 1000:
            raise ExemplarError(f"train.population must be a number of models in 1..1000, got {self.population}. Fix: e.g. train.population=5.")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise ExemplarError(f"train.epochs must be in 1..{MAX_EPOCHS}, got {self.epochs}. Fix: e.g. train.epochs=20.")
        if not 0 <= self.seed <= MAX_SEED - self.population:
            raise ExemplarError(
                f"train.seed must be in 0..{MAX_SEED - self.population} (seeds seed..seed+population-1 must be valid "
                f"random seeds), got {self.seed}. Fix: e.g. train.seed=0."
            )
        if self.crossfit_repeats < 0 or (self.crossfit_repeats and self.crossfit_folds < 2):
            raise ExemplarError(f"train.crossfit_repeats must be >= 0 (0: no cross-fitted population) and train.crossfit_folds >= 2, got {self.crossfit_repeats} and {self.crossfit_folds}.")
        if self.batch_size < 1:
            raise ExemplarError(f"train.batch_size must be >= 1, got {self.batch_size}.")
        if self.optimizer not in OPTIMIZERS:
            raise ExemplarError(f"train.optimizer must be one of {OPTIMIZERS}, got '{self.optimizer}'.")
        if self.schedule not in SCHEDULES:
            raise ExemplarError(f"train.schedule must be one of {SCHEDULES}, got '{self.schedule}'.")
        if self.device not in DEVICES:
            raise ExemplarError(f"train.device must be one of {DEVICES}, got '{self.device}'.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ExemplarError(f"train.label_smoothing must lie in [0, 1), got {self.label_smoothing}.")
        if self.crop_padding < 0:
            raise ExemplarError(f"train.crop_padding must be >= 0, got {self.crop_padding}.")
        if not 0 < self.lr <= 10:
            raise ExemplarError(f"train.lr must be in (0, 10], got {self.lr}. Fix: e.g. train.lr=0.05.")
        if not 0 < self.step_gamma <= 1:
            raise ExemplarError(f"train.step_gamma must be in (0, 1], got {self.step_gamma}. Fix: e.g. train.step_gamma=0.1.")
        if not 0.0 <= self.momentum < 1.0 or self.weight_decay < 0:
            raise ExemplarError(f"train.momentum must lie in [0, 1) and train.weight_decay be >= 0, got {self.momentum}, {self.weight_decay}.")
        if self.step_epochs < 1 or self.eval_batch_size < 1:
            raise ExemplarError(f"train.step_epochs and train.eval_batch_size must be >= 1, got {self.step_epochs}, {self.eval_batch_size}.")
        if self.checkpoint_every < 1 and not self.checkpoint_epochs:
            raise ExemplarError("train.checkpoint_every must be >= 1 (or list train.checkpoint_epochs).")
        if any(not 1 <= e <= self.epochs for e in self.checkpoint_epochs):
            raise ExemplarError(f"train.checkpoint_epochs must lie in 1..{self.epochs}, got {self.checkpoint_epochs}.")

    def is_checkpoint_epoch(self, epoch: int) -> bool:
        """Whether to save after `epoch` (1-based); the last epoch always is one."""
        if epoch == self.epochs:
            return True
        if self.checkpoint_epochs:
            return epoch in self.checkpoint_epochs
        return epoch % self.checkpoint_every == 0
