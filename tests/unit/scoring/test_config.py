import dataclasses

import pytest

from exemplar.errors import ExemplarError
from exemplar.scoring.config import ScoreConfig, early_checkpoint_index


@pytest.mark.parametrize("changes, message", [
    ({"tracin_scope": "everything"}, "tracin_scope"),
    ({"vog_window": "first"}, "vog_window"),
    ({"vog_label": "guessed"}, "vog_label"),
    ({"batch_size": 0}, "batch_size"),
    ({"tracin_scope": "layers"}, "tracin_layers"),
    ({"tracin_scope": "all", "projection_dim": 0}, "projection"),
    ({"influence_top_k": -1}, "influence_top_k"),
])
def test_bad_settings_name_the_setting(changes, message):
    with pytest.raises(ExemplarError, match=message):
        ScoreConfig(**changes).validate()


def test_defaults_are_valid_and_match_conf():
    import yaml

    from flows._env import PROJECT_ROOT

    ScoreConfig().validate()
    conf = yaml.safe_load((PROJECT_ROOT / "conf" / "score" / "default.yaml").read_text())
    assert conf == {**ScoreConfig().__dict__, "oos": dataclasses.asdict(ScoreConfig().oos)}


def test_early_checkpoint_is_the_first_at_or_after_the_target():
    assert early_checkpoint_index([2, 4, 6], 3) == 1
    assert early_checkpoint_index([2, 4, 6], 9) == 2
