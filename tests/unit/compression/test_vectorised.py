"""Pruning a population at every level in one ensemble matches the one-model prune-while-fine-tune
loop member for member (1e-6 on every weight; the tiny CNN has no dropout), and the dense reference
level is fine-tuned exactly like the compressed levels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exemplar.compression.config import CompressConfig
from exemplar.compression.finetune import prune_finetune
from exemplar.compression.population import PopulationData, compress_population, prune_schedule
from exemplar.compression.schedule import PruneSchedule, gradual_schedule
from exemplar.compression.vectorised import finetune_population, stacked_magnitude_masks
from exemplar.compression.magnitude import global_magnitude_masks
from exemplar.training.config import TrainConfig
from tests.unit.compression.makers import blob_data, tiny_cnn

FINETUNE = TrainConfig(epochs=2, batch_size=16, lr=0.01, device="cpu")


def _max_difference(state: dict, model: torch.nn.Module) -> float:
    return max(float((state[k] - v).abs().max()) for k, v in model.state_dict().items())


def test_stacked_masks_equal_one_model_masks():
    weights = [{"a": torch.randn(3, 4, generator=torch.Generator().manual_seed(s)), "b": torch.randn(5, generator=torch.Generator().manual_seed(s + 9))} for s in range(3)]
    stacked = {k: torch.stack([w[k] for w in weights]) for k in ("a", "b")}
    masks = stacked_magnitude_masks(stacked, [0.0, 0.5, 0.9])
    for m, sparsity in enumerate([0.0, 0.5, 0.9]):
        alone = global_magnitude_masks(weights[m], sparsity)
        assert all(torch.equal(masks[k][m], alone[k]) for k in ("a", "b"))


def test_every_model_and_level_matches_the_one_model_loop():
    x, y = blob_data(96)
    models, rows, seeds = [tiny_cnn(0), tiny_cnn(1)], [torch.arange(0, 80), torch.arange(16, 96)], [5, 6]
    schedules = [gradual_schedule(s, 0.0, 10, 2, 0.75) for s in (0.0, 0.5, 0.9)] + [PruneSchedule(final=0.7)]
    result = finetune_population(models, rows, seeds, x, y, schedules, FINETUNE)
    for m in range(2):
        for l, schedule in enumerate(schedules):
            alone = prune_finetune(models[m], x[rows[m]], y[rows[m]], schedule, TrainConfig(**{**FINETUNE.__dict__, "seed": seeds[m]}))
            member = m * len(schedules) + l
            assert _max_difference(result.stacked.state_dict(member), alone.model) < 1e-6
            assert result.achieved[member]["global"] == pytest.approx(alone.sparsity["global"])
            assert result.mask_updates[member] == len(alone.history)


def _population_data(x, y, rows, seeds):
    held_out = np.ones((len(rows), len(y)), dtype=bool)
    for m, r in enumerate(rows):
        held_out[m, r.numpy()] = False
    is_test = np.zeros(len(y), dtype=bool)
    is_test[-16:] = True
    return PopulationData(x, y, is_test, held_out, seeds, rows, [r.numpy()[:8] for r in rows], 4)


def test_dense_reference_gets_the_compressed_levels_fine_tuning():
    """Level "dense" is the same prune-while-fine-tune run with sparsity 0: same rows, epochs, lr
    schedule and batch order as every pruned level; only the masks differ."""
    x, y = blob_data(96)
    models, rows, seeds = [tiny_cnn(0), tiny_cnn(1)], [torch.arange(0, 80), torch.arange(0, 80)], [5, 6]
    config = CompressConfig(sparsities=[0.5], quantization=["dynamic"], latency_repeats=1)
    levels = {level.tag: level for level in compress_population(models, _population_data(x, y, rows, seeds), config, FINETUNE)}
    assert list(levels) == ["dense", "p50", "int8_dynamic"]
    assert [d["finetune_epochs"] for d in levels["dense"].details] == [d["finetune_epochs"] for d in levels["p50"].details] == [2, 2]
    for m in range(2):
        tuned = TrainConfig(**{**FINETUNE.__dict__, "seed": seeds[m]})
        for tag, sparsity in (("dense", 0.0), ("p50", 0.5)):
            alone = prune_finetune(models[m], x[rows[m]], y[rows[m]], prune_schedule(config, sparsity, 80, FINETUNE), tuned)
            expected = alone.model(x).argmax(dim=1).numpy()
            assert np.array_equal(levels[tag].predictions[m], expected)
        assert levels["dense"].details[m]["achieved_sparsity"] == 0.0
    assert levels["dense"].metrics[0]["latency_ms"] > 0 and np.isnan(levels["dense"].metrics[1]["latency_ms"])
    # per-class accuracy is measured on the rows each model held out
    assert levels["dense"].metrics[0]["oos_accuracy"] == pytest.approx(np.mean(levels["dense"].predictions[0][80:] == y.numpy()[80:]))


def test_prune_only_oneshot_uses_the_one_model_path():
    x, y = blob_data(96)
    rows = [torch.arange(0, 80)]
    config = CompressConfig(sparsities=[0.5], method="oneshot", finetune_epochs=0, quantization=[], latency_repeats=1)
    finetune = TrainConfig(**{**FINETUNE.__dict__, "epochs": 0})
    levels = {level.tag: level for level in compress_population([tiny_cnn(0)], _population_data(x, y, rows, [5]), config, finetune)}
    assert levels["p50"].details[0]["achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert np.array_equal(levels["dense"].predictions[0], tiny_cnn(0)(x).argmax(dim=1).numpy())
