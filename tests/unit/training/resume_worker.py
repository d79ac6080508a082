"""A training process for the resume-after-kill test: tiny seeded images, a CNN with dropout,
augmentation and momentum, checkpoints every epoch into ``<dir>/checkpoints``; it resumes from the
latest complete checkpoint and writes the final weights to ``<dir>/final.pt``.

    python -m tests.unit.training.resume_worker DIR [SECONDS_TO_SLEEP_AFTER_EACH_EPOCH]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from exemplar.models.factory import ModelConfig, build_classifier
from exemplar.training.checkpoints import checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint
from exemplar.training.config import TrainConfig
from exemplar.training.loop import fit

CONFIG = TrainConfig(
    epochs=6, batch_size=16, lr=0.05, schedule="onecycle", checkpoint_every=1, crop_padding=1, hflip=True, seed=3, device="cpu"
)


def tiny_images(rows: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, 1, 8, 8) images in [0, 1] whose label is the brightest quadrant, and (rows,) labels."""
    generator = torch.Generator().manual_seed(11)
    x = torch.rand(rows, 1, 8, 8, generator=generator) * 0.5
    y = torch.randint(0, 4, (rows,), generator=generator)
    for label, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        x[y == label, :, r : r + 4, c : c + 4] += 0.5
    return x, y


def run(directory: Path, pause: float) -> None:
    torch.set_num_threads(1)
    x, y = tiny_images()
    torch.manual_seed(CONFIG.seed)
    model = build_classifier(ModelConfig(name="cnn", cnn_widths=[8, 8], cnn_hidden=16, dropout=0.2), "image", (1, 8, 8), 4, x.mean(), x.std())
    latest = latest_checkpoint(directory / "checkpoints")
    resume = load_checkpoint(latest) if latest else None
    save = lambda epoch, state: save_checkpoint(state, checkpoint_path(directory / "checkpoints", epoch))  # noqa: E731
    fit(model, x, y, CONFIG, resume=resume, save_checkpoint=save, on_epoch=lambda result: time.sleep(pause))
    save_checkpoint({"model": model.state_dict()}, directory / "final.pt")


if __name__ == "__main__":
    run(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
