"""Data-parallel training (DDP) across the processes that ``torchrun`` starts.

Every rank draws the same permutation and the same augmentation from the shared, seeded generator
for each global batch of ``train.batch_size`` rows and trains on its slice ``batch[rank::world]``;
DDP averages the gradients, so all ranks hold identical weights after every step, and a checkpoint
written by rank 0 restores every rank. Per-example dynamics are summed across ranks (each row is in
exactly one slice), so rank 0 sees the whole epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

from exemplar.errors import ExemplarError


@dataclass(frozen=True)
class Distributed:
    """This process's place in the group: rank in 0..world_size-1 and the device it trains on."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch: (B, ...) -> (about B / world_size, ...)."""
        return batch[self.rank :: self.world_size]

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks (on this rank's device, as NCCL needs), returned on the CPU."""
        summed = tensor.to(self.device)
        dist.all_reduce(summed, op=dist.ReduceOp.SUM)
        return summed.cpu()


def world_from_environment(environ: Mapping[str, str]) -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's variables; (0, 0, 1) when not under torchrun."""
    return int(environ.get("RANK", 0)), int(environ.get("LOCAL_RANK", 0)), int(environ.get("WORLD_SIZE", 1))


def start(environ: Mapping[str, str], device: torch.device) -> Distributed | None:
    """Join torchrun's process group (gloo on CPU, NCCL on CUDA); None for a single process."""
    rank, local_rank, world_size = world_from_environment(environ)
    if world_size <= 1:
        return None
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank=rank, world_size=world_size, device=device)


def stop(group: Distributed | None) -> None:
    if group is not None and dist.is_initialized():
        dist.destroy_process_group()


def check_batches(rows: int, batch_size: int, world_size: int) -> None:
    """Every global batch, the last included, must give each rank at least one row."""
    last = rows % batch_size or batch_size
    if min(batch_size, last) < world_size:
        raise ExemplarError(
            f"with {world_size} processes every batch needs >= {world_size} rows, but {rows} training rows in batches "
            f"of {batch_size} leave a last batch of {last}. Fix: change train.batch_size (or the number of processes)."
        )
