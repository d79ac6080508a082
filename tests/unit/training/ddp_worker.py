"""One process of the two-process DDP test (gloo on CPU): trains the tiny images of the resume test
with :func:`exemplar.training.loop.fit` under torchrun and writes ``<dir>/rank_<r>.pt`` holding the
final weights and the last epoch's metrics and dynamics as this rank sees them.

    python -m torch.distributed.run --nproc_per_node 2 -m tests.unit.training.ddp_worker DIR
    python -m tests.unit.training.ddp_worker DIR        (one process: the reference)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from exemplar.models.factory import ModelConfig, build_classifier
from exemplar.training import distributed
from exemplar.training.checkpoints import save_checkpoint
from exemplar.training.config import TrainConfig
from exemplar.training.loop import fit
from tests.unit.training.resume_worker import tiny_images

CONFIG = TrainConfig(epochs=2, batch_size=16, lr=0.05, schedule="cosine", crop_padding=1, hflip=True, seed=5, device="cpu")
MODEL = ModelConfig(name="cnn", cnn_widths=[8, 8], cnn_hidden=16, dropout=0.0)  # no dropout: comparable to one process


def run(directory: Path) -> None:
    torch.set_num_threads(1)
    group = distributed.start(os.environ, torch.device("cpu"))
    x, y = tiny_images()
    torch.manual_seed(CONFIG.seed)
    model = build_classifier(MODEL, "image", (1, 8, 8), 4, x.mean(), x.std())
    try:
        last = fit(model, x, y, CONFIG, distributed=group)[-1]
    finally:
        distributed.stop(group)
    state = {"model": model.state_dict(), "train_loss": last.train_loss, "label_probability": torch.from_numpy(last.label_probability)}
    save_checkpoint(state, directory / f"rank_{group.rank if group else 'single'}.pt")


if __name__ == "__main__":
    run(Path(sys.argv[1]))
