"""The training loop: deterministic, resumable, and recording per-example training dynamics.

I/O is passed in: ``save_checkpoint(epoch, state)`` and ``on_epoch(result)`` are callables supplied by
the caller, so this module never touches the disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from exemplar.training.augment import random_crop, random_hflip
from exemplar.training.config import TrainConfig
from exemplar.training.schedules import build_optimizer, build_scheduler


@dataclass
class EpochResult:
    """Metrics of one epoch plus per-example dynamics over the N training rows (in input order)."""

    epoch: int
    lr: float  # mean learning rate over the epoch's steps
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float
    correct: np.ndarray  # (N,) bool: prediction during the epoch's pass was the given label
    label_probability: np.ndarray  # (N,) float32: softmax probability of the given label


@dataclass
class _State:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    lr_sum: float = 0.0
    lr_steps: int = 0


def fit(
    model: torch.nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    config: TrainConfig,
    *,
    test_x: torch.Tensor | None = None,
    test_y: torch.Tensor | None = None,
    resume: dict | None = None,
    meta: dict | None = None,
    save_checkpoint: Callable[[int, dict], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> list[EpochResult]:
    """Train `model` in place on (N, ...) inputs and (N,) int64 labels; return the epochs run now.

    With `resume` (a checkpoint dict) training continues after its epoch and, on CPU with the same
    thread count, ends with the same weights as an uninterrupted run.
    """
    config.validate()
    steps_per_epoch = -(-len(train_y) // config.batch_size)
    state = _init_state(model, config, steps_per_epoch)
    start = _restore(state, resume) if resume else 1
    results = []
    for epoch in range(start, config.epochs + 1):
        result = _run_epoch(state, train_x, train_y, config, epoch)
        if test_x is not None and test_y is not None:
            result.test_loss, result.test_accuracy = evaluate(model, test_x, test_y, config.eval_batch_size)
        if config.is_checkpoint_epoch(epoch) and save_checkpoint is not None:
            save_checkpoint(epoch, _snapshot(state, epoch, meta or {}))
            state.lr_sum, state.lr_steps = 0.0, 0
        if on_epoch is not None:
            on_epoch(result)
        results.append(result)
    model.eval()
    return results


def _init_state(model: torch.nn.Module, config: TrainConfig, steps_per_epoch: int) -> _State:
    optimizer = build_optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    return _State(model, optimizer, build_scheduler(optimizer, config, steps_per_epoch), generator)


def _run_epoch(state: _State, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, epoch: int) -> EpochResult:
    started = time.perf_counter()
    state.model.train()
    order = torch.randperm(len(y), generator=state.generator)
    correct = np.zeros(len(y), dtype=bool)
    probability = np.zeros(len(y), dtype=np.float32)
    loss_sum, lr_sum = 0.0, 0.0
    for begin in range(0, len(y), config.batch_size):
        index = order[begin : begin + config.batch_size]
        inputs = _augment(x[index], config, state.generator)
        lr_sum += state.optimizer.param_groups[0]["lr"]
        logits, loss = _step(state, inputs, y[index], config.label_smoothing)
        _record(logits, y[index], index, correct, probability)
        loss_sum += loss * len(index)
    steps = -(-len(y) // config.batch_size)
    state.lr_sum += lr_sum
    state.lr_steps += steps
    return EpochResult(
        epoch=epoch, lr=lr_sum / steps, train_loss=loss_sum / len(y), train_accuracy=float(correct.mean()),
        test_loss=None, test_accuracy=None, seconds=time.perf_counter() - started,
        correct=correct, label_probability=probability,
    )


def _step(state: _State, inputs: torch.Tensor, labels: torch.Tensor, smoothing: float) -> tuple[torch.Tensor, float]:
    logits = state.model(inputs)
    loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    state.scheduler.step()
    return logits.detach(), float(loss.detach())


def _record(logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, correct: np.ndarray, probability: np.ndarray) -> None:
    probs = logits.softmax(dim=1)
    rows = index.numpy()
    correct[rows] = (logits.argmax(dim=1) == labels).numpy()
    probability[rows] = probs.gather(1, labels[:, None])[:, 0].numpy()


def _augment(batch: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    if batch.dim() != 4:
        return batch
    if config.crop_padding > 0:
        batch = random_crop(batch, config.crop_padding, generator)
    if config.hflip:
        batch = random_hflip(batch, generator)
    return batch


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` in eval mode on (N, ...) inputs and (N,) labels."""
    was_training = model.training
    model.eval()
    loss_sum, hits = 0.0, 0
    for begin in range(0, len(y), batch_size):
        logits = model(x[begin : begin + batch_size])
        target = y[begin : begin + batch_size]
        loss_sum += float(F.cross_entropy(logits, target, reduction="sum"))
        hits += int((logits.argmax(dim=1) == target).sum())
    model.train(was_training)
    return loss_sum / max(len(y), 1), hits / max(len(y), 1)


def _snapshot(state: _State, epoch: int, meta: dict) -> dict:
    return {
        "epoch": epoch,
        "lr": state.lr_sum / max(state.lr_steps, 1),
        "lr_last": state.optimizer.param_groups[0]["lr"],
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "generator": state.generator.get_state()},
        "meta": meta,
    }


def _restore(state: _State, checkpoint: dict) -> int:
    """Load model, optimiser, scheduler and RNG states; return the first epoch still to run."""
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"]["torch"])
    state.generator.set_state(checkpoint["rng"]["generator"])
    return int(checkpoint["epoch"]) + 1
