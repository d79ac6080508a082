"""Train a population of small models together, as one vectorised ensemble.

The M models (same architecture, no batch norm) are stacked with ``torch.func.stack_module_state``:
every parameter becomes one (M, ...) leaf tensor, and one forward pass of
``vmap(functional_call(base, ...))`` runs all models on their own (M, B, ...) batches. One optimizer
(SGD or AdamW; both act element-wise) steps the stacked parameters, so each model follows exactly the
update it would get alone; the loss is the sum over models of each model's mean cross-entropy, whose
gradient with respect to model m's slice is model m's own gradient.

What stays per model, as in :func:`exemplar.training.loop.fit`:

- the training rows (``members[m].rows``: e.g. a cross-fitting fold's complement), the data order and
  the augmentation, both drawn from the model's own generator seeded with its seed;
- the initialisation (the caller builds each model after ``torch.manual_seed(seed)``);
- dropout: one mask per model (``vmap(randomness="different")``, drawn from torch's global generator,
  so dropout masks differ from a model trained alone; with dropout 0 the per-model results match a
  lone :func:`fit` to float tolerance, tested in ``tests/unit/training/test_ensemble.py``).

The models of one ensemble must take the same number of optimizer steps per epoch (their row counts
may differ inside that: a shorter last batch is padded and the padding weighted 0); :func:`step_groups`
splits a population into such groups. Checkpoints are written per model in the format of
:mod:`exemplar.training.loop` (model, optimizer, scheduler and RNG states), so a model's checkpoint
loads, scores and resumes like any other; an ensemble resumes from its models' checkpoints of one epoch.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from exemplar.training.config import TrainConfig
from exemplar.training.device import resolve_device, to_cpu
from exemplar.training.loop import EpochResult, _augment
from exemplar.training.schedules import build_scheduler, steps_per_epoch


@dataclass
class Member:
    """One model of the ensemble: its seed and the (n,) int64 indices of the rows it trains on."""

    seed: int
    rows: torch.Tensor


def supports_ensemble(model: nn.Module) -> bool:
    """Batch norm keeps running statistics in place, which vmap cannot do per model: such models
    (ResNet-18) are trained one at a time."""
    return not any(isinstance(module, nn.modules.batchnorm._NormBase) for module in model.modules())


def step_groups(members: Sequence[Member], batch_size: int) -> list[list[int]]:
    """Indices of `members` grouped by optimizer steps per epoch (one ensemble per group)."""
    groups: dict[int, list[int]] = {}
    for index, member in enumerate(members):
        groups.setdefault(steps_per_epoch(len(member.rows), batch_size), []).append(index)
    return list(groups.values())


class Stacked:
    """M models as stacked (M, ...) parameters and buffers, run with one vmapped call."""

    def __init__(self, models: Sequence[nn.Module], device: torch.device):
        self.names = list(models[0].state_dict().keys())
        params, buffers = stack_module_state([m.to(device) for m in models])
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = buffers
        self.base = copy.deepcopy(models[0]).to("meta")
        self.size = len(models)

    def __call__(self, x: torch.Tensor, *, training: bool) -> torch.Tensor:
        """(M, B, ...) inputs (one batch per model) -> (M, B, K) logits."""
        self.base.train(training)

        def one(params, buffers, inputs):
            return functional_call(self.base, (params, buffers), (inputs,))

        return vmap(one, randomness="different" if training else "error")(self.params, self.buffers, x)

    def state_dict(self, m: int) -> dict[str, torch.Tensor]:
        """Model m's state dict, keys in the order of the model's own ``state_dict()``."""
        tensors = {**self.params, **self.buffers}
        return {name: tensors[name][m].detach().clone() for name in self.names}

    def load(self, m: int, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, tensor in {**self.params, **self.buffers}.items():
                tensor[m].copy_(state[name])

    def module(self, m: int, template: nn.Module) -> nn.Module:
        """A copy of `template` holding model m's weights (CPU, eval mode)."""
        model = copy.deepcopy(template).cpu()
        model.load_state_dict({k: v.cpu() for k, v in self.state_dict(m).items()})
        return model.eval()

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """(N, ...) inputs shared by all models -> (M, N, K) eval-mode logits, on the CPU (at most
        about `batch_size` * 8 model-rows per pass, so memory stays bounded for large M)."""
        device = next(iter(self.params.values())).device
        batch_size = max(1, min(batch_size, 8 * batch_size // self.size))
        chunks = []
        for begin in range(0, len(x), batch_size):
            batch = x[begin : begin + batch_size].to(device)
            chunks.append(self(batch.expand(self.size, *batch.shape), training=False).float().cpu())
        return torch.cat(chunks, dim=1)


def build_stacked_optimizer(stacked: Stacked, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of :func:`exemplar.training.schedules.build_optimizer` over the stacked parameters
    (parameter order = each model's ``parameters()`` order, so per-model states convert one to one)."""
    params = list(stacked.params.values())
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def member_optimizer_state(optimizer: torch.optim.Optimizer, m: int, size: int) -> dict:
    """Model m's slice of the stacked optimizer state, in the format a lone model's optimizer saves."""
    full = optimizer.state_dict()
    state = {
        index: {key: (value[m].clone() if _is_stacked(value, size) else copy.deepcopy(value)) for key, value in entry.items()}
        for index, entry in full["state"].items()
    }
    return {"state": state, "param_groups": copy.deepcopy(full["param_groups"])}


def _is_stacked(value: object, size: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == size


def load_member_optimizer_states(optimizer: torch.optim.Optimizer, states: Sequence[dict]) -> None:
    """Stack per-model optimizer states (as saved in checkpoints) into the stacked optimizer."""
    first = states[0]
    stacked = {
        index: {key: (torch.stack([s["state"][index][key] for s in states]) if torch.is_tensor(value) and value.dim() > 0 else value)
                for key, value in entry.items()}
        for index, entry in first["state"].items()
    }
    optimizer.load_state_dict({"state": stacked, "param_groups": first["param_groups"]})


@dataclass
class _Ensemble:
    stacked: Stacked
    members: list[Member]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generators: list[torch.Generator]
    device: torch.device
    lr_sum: float = 0.0
    lr_steps: int = 0


def fit_ensemble(
    models: Sequence[nn.Module],
    members: Sequence[Member],
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    test_x: torch.Tensor | None = None,
    test_y: torch.Tensor | None = None,
    resume: Sequence[dict] | None = None,
    metas: Sequence[dict] | None = None,
    save_checkpoint: Callable[[int, int, dict], None] | None = None,
    on_epoch: Callable[[int, EpochResult], None] | None = None,
    after_step: Callable[[int, Stacked], None] | None = None,
    on_start: Callable[[Stacked], None] | None = None,
) -> tuple[Stacked, list[list[EpochResult]]]:
    """Train `models` (one per member) together on the shared (N, ...) inputs and (N,) labels.

    Member m trains on rows ``members[m].rows`` with ``config`` and seed ``members[m].seed``; its
    dynamics (`on_epoch(m, result)`, correct / label probability over its rows in the order of
    ``rows``) and checkpoints (`save_checkpoint(m, epoch, state)`) are its own. `after_step(step,
    stacked)` runs after every optimizer step (pruning re-applies its masks there), `on_start(stacked)`
    once before the first step. `resume`: one
    checkpoint per member, all of the same epoch. Returns the trained stack and per-member results.
    """
    config.validate()
    members = list(members)
    if len({steps_per_epoch(len(m.rows), config.batch_size) for m in members}) != 1:
        raise ValueError("every member of an ensemble must take the same steps per epoch; split them with step_groups()")
    state = _init(models, members, config)
    start = _restore(state, resume) if resume else 1
    xs, ys = x.to(state.device), y.to(state.device)
    if on_start is not None:
        on_start(state.stacked)
    results: list[list[EpochResult]] = [[] for _ in members]
    for epoch in range(start, config.epochs + 1):
        epoch_results = _run_epoch(state, xs, ys, config, epoch, after_step)
        _evaluate_epoch(state, epoch_results, test_x, test_y, config.eval_batch_size)
        if config.is_checkpoint_epoch(epoch):
            if save_checkpoint is not None:
                for m in range(len(members)):
                    save_checkpoint(m, epoch, _snapshot(state, m, epoch, (metas or [{}] * len(members))[m]))
            state.lr_sum, state.lr_steps = 0.0, 0
        for m, result in enumerate(epoch_results):
            if on_epoch is not None:
                on_epoch(m, result)
            results[m].append(result)
    return state.stacked, results


def _init(models: Sequence[nn.Module], members: list[Member], config: TrainConfig) -> _Ensemble:
    device = resolve_device(config.device)
    stacked = Stacked(models, device)
    optimizer = build_stacked_optimizer(stacked, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch(len(members[0].rows), config.batch_size))
    generators = [torch.Generator().manual_seed(m.seed) for m in members]
    return _Ensemble(stacked, members, optimizer, scheduler, generators, device)


def _batches(state: _Ensemble, x: torch.Tensor, config: TrainConfig) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per member, per step: (global row indices, augmented inputs), drawn as a lone fit draws them."""
    per_member = []
    for member, generator in zip(state.members, state.generators):
        order = torch.randperm(len(member.rows), generator=generator)
        steps = []
        for begin in range(0, len(order), config.batch_size):
            local = order[begin : begin + config.batch_size]
            rows = member.rows[local]
            steps.append((local, _augment(x[rows.to(x.device)], config, generator)))
        per_member.append(steps)
    return per_member


def _pad(tensors: list[torch.Tensor], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (b_m, ...) tensors to (M, size, ...), repeating row 0 as padding; (M, size) weights 1/0."""
    padded, weights = [], []
    for tensor in tensors:
        extra = size - len(tensor)
        padded.append(torch.cat([tensor, tensor[:1].expand(extra, *tensor.shape[1:])]) if extra else tensor)
        weights.append(torch.cat([torch.ones(len(tensor)), torch.zeros(extra)]))
    return torch.stack(padded), torch.stack(weights)


def _run_epoch(state: _Ensemble, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, epoch: int,
               after_step: Callable[[int, Stacked], None] | None) -> list[EpochResult]:
    started = time.perf_counter()
    batches = _batches(state, x, config)
    sizes = [len(m.rows) for m in state.members]
    correct = [torch.zeros(n) for n in sizes]
    probability = [torch.zeros(n) for n in sizes]
    loss_sums = torch.zeros(len(sizes), dtype=torch.float64)
    lr_sum, steps = 0.0, len(batches[0])
    for step in range(steps):
        local = [batches[m][step][0] for m in range(len(sizes))]
        inputs, weights = _pad([batches[m][step][1] for m in range(len(sizes))], max(len(i) for i in local))
        labels, _ = _pad([y[state.members[m].rows[i].to(y.device)] for m, i in enumerate(local)], inputs.shape[1])
        lr_sum += state.optimizer.param_groups[0]["lr"]
        logits, losses = _step(state, inputs, labels, weights.to(inputs.device), config.label_smoothing)
        loss_sums += losses.double() * torch.tensor([len(i) for i in local], dtype=torch.float64)
        for m, index in enumerate(local):
            _record(logits[m, : len(index)], labels[m, : len(index)], index, correct[m], probability[m])
        if after_step is not None:
            after_step(state.scheduler.last_epoch - 1, state.stacked)
    state.lr_sum += lr_sum
    state.lr_steps += steps
    seconds = time.perf_counter() - started
    return [
        EpochResult(epoch=epoch, lr=lr_sum / steps, train_loss=float(loss_sums[m]) / sizes[m], train_accuracy=float(correct[m].mean()),
                    test_loss=None, test_accuracy=None, seconds=seconds, correct=correct[m].numpy().astype(bool),
                    label_probability=probability[m].numpy().astype(np.float32))
        for m in range(len(sizes))
    ]


def _step(state: _Ensemble, inputs: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, smoothing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step of every model: loss = sum_m mean_b CE(model_m(x_mb), y_mb) over real rows."""
    logits = state.stacked(inputs, training=True)  # (M, B, K)
    per_row = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), label_smoothing=smoothing, reduction="none").view_as(weights)
    losses = (per_row * weights).sum(dim=1) / weights.sum(dim=1)  # (M,)
    state.optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()
    state.optimizer.step()
    state.scheduler.step()
    return logits.detach().float(), losses.detach().cpu()


def _record(logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, correct: torch.Tensor, probability: torch.Tensor) -> None:
    probs = logits.softmax(dim=1)
    correct[index] = (logits.argmax(dim=1) == labels).float().cpu()
    probability[index] = probs.gather(1, labels[:, None])[:, 0].cpu()


def _evaluate_epoch(state: _Ensemble, results: list[EpochResult], test_x, test_y, batch_size: int) -> None:
    """Test loss and accuracy of every model (eval mode), written into its epoch result."""
    if test_x is None or test_y is None or len(test_y) == 0:
        return
    logits = state.stacked.predict(test_x, batch_size)  # (M, T, K)
    target = test_y.cpu()
    for m, result in enumerate(results):
        result.test_loss = float(F.cross_entropy(logits[m], target))
        result.test_accuracy = float((logits[m].argmax(dim=1) == target).float().mean())


def _snapshot(state: _Ensemble, m: int, epoch: int, meta: dict) -> dict:
    """Model m's checkpoint, in the format of :func:`exemplar.training.loop.fit`'s checkpoints."""
    return to_cpu({
        "epoch": epoch,
        "lr": state.lr_sum / max(state.lr_steps, 1),
        "lr_last": state.optimizer.param_groups[0]["lr"],
        "model": state.stacked.state_dict(m),
        "optimizer": member_optimizer_state(state.optimizer, m, state.stacked.size),
        "scheduler": state.scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "generator": state.generators[m].get_state()},
        "meta": meta,
    })


def _restore(state: _Ensemble, checkpoints: Sequence[dict]) -> int:
    """Load every member's checkpoint (all of one epoch); return the first epoch still to run."""
    epochs = {int(c["epoch"]) for c in checkpoints}
    if len(epochs) != 1:
        raise ValueError(f"an ensemble resumes from checkpoints of one epoch, got epochs {sorted(epochs)}")
    for m, checkpoint in enumerate(checkpoints):
        state.stacked.load(m, checkpoint["model"])
        state.generators[m].set_state(checkpoint["rng"]["generator"])
    load_member_optimizer_states(state.optimizer, [c["optimizer"] for c in checkpoints])
    state.scheduler.load_state_dict(checkpoints[0]["scheduler"])
    torch.set_rng_state(checkpoints[0]["rng"]["torch"])
    return epochs.pop() + 1
