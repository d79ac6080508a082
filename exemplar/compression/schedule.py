"""When to prune how much: the cubic sparsity schedule of Zhu & Gupta (2017, arXiv 1710.01878).

    s_t = s_f + (s_i - s_f) * (1 - p)^3,   p = min(t / t_end, 1)

for optimizer steps t = 0, 1, ..., with the mask recomputed every `every` steps up to `t_end`
(and at `t_end` itself, where s_t = s_f). ``t_end = 0`` is one-shot pruning: s_f from step 0.
"""

from __future__ import annotations

from dataclasses import dataclass


def cubic_sparsity(progress: float, initial: float, final: float) -> float:
    """Zhu & Gupta's s = s_f + (s_i - s_f)(1 - p)^3 for progress p clipped to [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    return final + (initial - final) * (1.0 - p) ** 3


@dataclass(frozen=True)
class PruneSchedule:
    """Target sparsity per optimizer step; `end_step` = 0 means one-shot pruning at step 0."""

    final: float
    initial: float = 0.0
    end_step: int = 0
    every: int = 1

    def sparsity_at(self, step: int) -> float:
        if self.end_step <= 0:
            return self.final
        return cubic_sparsity(step / self.end_step, self.initial, self.final)

    def is_update_step(self, step: int) -> bool:
        """Whether the mask is recomputed before optimizer step `step` (or after the last one)."""
        if self.end_step <= 0:
            return step == 0
        return step == self.end_step or (step < self.end_step and step % self.every == 0)


def gradual_schedule(final: float, initial: float, total_steps: int, every: int, end_fraction: float) -> PruneSchedule:
    """The cubic schedule reaching `final` after round(end_fraction * total_steps) steps (at least 1)."""
    end_step = max(1, int(round(end_fraction * total_steps)))
    return PruneSchedule(final=final, initial=initial, end_step=end_step, every=every)
