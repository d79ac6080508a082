"""The training loop: deterministic, resumable, and recording per-example training dynamics.

I/O is passed in: ``save_checkpoint(epoch, state)``, ``on_epoch(result)`` and ``on_batch(epoch, step)``
are callables supplied by the caller, so this module never touches the disk or the terminal.

On the CPU a run is bitwise reproducible for a given seed and thread count, including across a
resume: every random draw (shuffling, augmentation) comes from one seeded generator whose state is
checkpointed together with torch's global RNG (dropout), the optimiser and the schedule.
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
from exemplar.training.device import autocast, resolve_device, to_cpu, uses_amp
from exemplar.training.distributed import Distributed, check_batches
from exemplar.training.schedules import build_optimizer, build_scheduler, steps_per_epoch


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
    model: torch.nn.Module  # the bare model (its state_dict goes into checkpoints)
    network: torch.nn.Module  # what the steps call: the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    device: torch.device
    amp: bool
    group: Distributed | None = None
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
    on_batch: Callable[[int, int], None] | None = None,
    distributed: Distributed | None = None,
) -> list[EpochResult]:
    """Train `model` in place on (N, ...) inputs and (N,) int64 labels; return the epochs run now.

    With `resume` (a checkpoint dict) training continues after its epoch and, on CPU with the same
    thread count, ends with the same weights as an uninterrupted run. With `distributed` (under
    torchrun) each rank trains on its slice of every batch; only rank 0 evaluates and saves.
    The model is returned to the device it came on.
    """
    config.validate()
    home = next(model.parameters()).device
    state = _init_state(model, config, len(train_y), distributed)
    start = _restore(state, resume) if resume else 1
    x, y = train_x.to(state.device), train_y.to(state.device)
    is_main = distributed is None or distributed.is_main
    results = []
    for epoch in range(start, config.epochs + 1):
        result = _run_epoch(state, x, y, config, epoch, on_batch)
        if is_main and test_x is not None and test_y is not None:
            result.test_loss, result.test_accuracy = evaluate(model, test_x, test_y, config.eval_batch_size)
        if config.is_checkpoint_epoch(epoch):
            if is_main and save_checkpoint is not None:
                save_checkpoint(epoch, _snapshot(state, epoch, meta or {}))
            state.lr_sum, state.lr_steps = 0.0, 0
        if on_epoch is not None:
            on_epoch(result)
        results.append(result)
    model.to(home).eval()
    return results


def _init_state(model: torch.nn.Module, config: TrainConfig, rows: int, group: Distributed | None) -> _State:
    device = group.device if group is not None else resolve_device(config.device)
    model.to(device)
    network = model
    if group is not None:
        check_batches(rows, config.batch_size, group.world_size)
        device_ids = [device.index] if device.type == "cuda" else None
        network = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch(rows, config.batch_size))
    generator = torch.Generator().manual_seed(config.seed)
    return _State(model, network, optimizer, scheduler, generator, device, uses_amp(config.amp, device), group)


def _run_epoch(
    state: _State, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, epoch: int, on_batch: Callable[[int, int], None] | None
) -> EpochResult:
    started = time.perf_counter()
    state.network.train()
    order = torch.randperm(len(y), generator=state.generator)
    correct = torch.zeros(len(y))
    probability = torch.zeros(len(y))
    loss_sum, lr_sum, steps = 0.0, 0.0, 0
    for begin in range(0, len(y), config.batch_size):
        index = order[begin : begin + config.batch_size]
        inputs = _augment(x[index.to(x.device)], config, state.generator)
        if state.group is not None:
            index, inputs = state.group.shard(index), state.group.shard(inputs)
        lr_sum += state.optimizer.param_groups[0]["lr"]
        labels = y[index.to(y.device)]
        logits, loss = _step(state, inputs, labels, config.label_smoothing)
        _record(logits, labels, index, correct, probability)
        loss_sum += loss * len(index)
        steps += 1
        if on_batch is not None:
            on_batch(epoch, steps)
    if state.group is not None:
        correct, probability, loss_sum = _gather(state.group, correct, probability, loss_sum)
    state.lr_sum += lr_sum
    state.lr_steps += steps
    return EpochResult(
        epoch=epoch, lr=lr_sum / steps, train_loss=loss_sum / len(y), train_accuracy=float(correct.mean()),
        test_loss=None, test_accuracy=None, seconds=time.perf_counter() - started,
        correct=correct.numpy().astype(bool), label_probability=probability.numpy().astype(np.float32),
    )


def _step(state: _State, inputs: torch.Tensor, labels: torch.Tensor, smoothing: float) -> tuple[torch.Tensor, float]:
    with autocast(state.amp):
        logits = state.network(inputs)
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    state.scheduler.step()
    return logits.detach().float(), float(loss.detach())


def _record(logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, correct: torch.Tensor, probability: torch.Tensor) -> None:
    """Write this batch's correctness and given-label probability into the (N,) epoch buffers at `index`."""
    probs = logits.softmax(dim=1)
    correct[index] = (logits.argmax(dim=1) == labels).float().cpu()
    probability[index] = probs.gather(1, labels[:, None])[:, 0].cpu()


def _gather(group: Distributed, correct: torch.Tensor, probability: torch.Tensor, loss_sum: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Each row was seen by exactly one rank, so summing the (N,) buffers over ranks completes them."""
    packed = group.all_sum(torch.cat([correct, probability, torch.tensor([loss_sum])]).double())
    rows = len(correct)
    return packed[:rows].float(), packed[rows : 2 * rows].float(), float(packed[-1])


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
    """Mean cross-entropy and accuracy of `model` in eval mode on (N, ...) inputs and (N,) labels.

    Batches are moved to the model's device; the inputs may stay on the CPU.
    """
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    loss_sum, hits = 0.0, 0
    for begin in range(0, len(y), batch_size):
        logits = model(x[begin : begin + batch_size].to(device))
        target = y[begin : begin + batch_size].to(device)
        loss_sum += float(F.cross_entropy(logits, target, reduction="sum"))
        hits += int((logits.argmax(dim=1) == target).sum())
    model.train(was_training)
    return loss_sum / max(len(y), 1), hits / max(len(y), 1)


def _snapshot(state: _State, epoch: int, meta: dict) -> dict:
    rng = {"torch": torch.get_rng_state(), "generator": state.generator.get_state()}
    if state.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(state.device)
    return to_cpu({
        "epoch": epoch,
        "lr": state.lr_sum / max(state.lr_steps, 1),
        "lr_last": state.optimizer.param_groups[0]["lr"],
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "rng": rng,
        "meta": meta,
    })


def _restore(state: _State, checkpoint: dict) -> int:
    """Load model, optimiser, scheduler and RNG states; return the first epoch still to run."""
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"]["torch"])
    state.generator.set_state(checkpoint["rng"]["generator"])
    if state.device.type == "cuda" and "cuda" in checkpoint["rng"]:
        torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], state.device)
    return int(checkpoint["epoch"]) + 1
