"""RunLayout's integrity rules on hand-made run folders (no training)."""

from __future__ import annotations

import pytest

from exemplar.errors import ExemplarError
from tasks.layout import RunLayout


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def _run(tmp_path, checkpoints, dynamics) -> RunLayout:
    layout = RunLayout(tmp_path)
    for epoch in checkpoints:
        _touch(layout.checkpoints(0) / f"epoch_{epoch:04d}.pt")
    for epoch in dynamics:
        _touch(layout.dynamics_file(0, epoch))
    return layout


@pytest.mark.parametrize(
    ("checkpoints", "dynamics", "resume"),
    [
        ([], [], None),
        ([2, 4], [1, 2, 3, 4], 4),
        ([2, 4], [1, 2, 3], 2),  # killed between checkpoint 4 and its dynamics
        ([2, 4], [1, 3, 4], None),  # a lost early epoch: everything is redone
        ([2], [1, 2, 3, 4, 5], 2),  # dynamics beyond the checkpoint are rewritten on resume
    ],
)
def test_resume_starts_from_the_newest_checkpoint_with_all_its_dynamics(tmp_path, checkpoints, dynamics, resume):
    layout = _run(tmp_path, checkpoints, dynamics)
    found = layout.resume_checkpoint(0)
    assert (found.name if found else None) == (f"epoch_{resume:04d}.pt" if resume else None)


def test_temp_files_never_count_as_dynamics(tmp_path):
    layout = _run(tmp_path, [1], [])
    _touch(layout.dynamics(0) / ".epoch_0001.parquet.abc.tmp")
    assert layout.dynamics_epochs(0) == [] and layout.resume_checkpoint(0) is None


def test_score_input_with_a_missing_epoch_is_refused(tmp_path):
    layout = _run(tmp_path, [3], [1, 3])
    with pytest.raises(ExemplarError, match=r"epoch\(s\) \[2\].*Fix:"):
        layout.complete_dynamics(0, 3)
    assert [p.name for p in _run(tmp_path, [3], [2]).complete_dynamics(0, 3)] == [f"epoch_{e:04d}.parquet" for e in (1, 2, 3)]
