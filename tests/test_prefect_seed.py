"""The seeded Prefect database (flows/prefect_seed.py): copied into a fresh Prefect home only, and a
server started there answers without migrating."""

from __future__ import annotations

import os
import subprocess
import urllib.request

import pytest

from flows import prefect_seed
from flows.early_server import SERVER_ENVIRONMENT, _healthy, free_port, server_command, stop


def fake_seed(tmp_path, version: str | None = None):
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / prefect_seed.DATABASE).write_bytes(b"seed database")
    (seed / prefect_seed.MEMO).write_text('block_auto_registration = "x"\n')
    (seed / prefect_seed.VERSION).write_text((version or prefect_seed.prefect_version()) + "\n")
    return seed


def test_a_fresh_home_gets_the_seed_and_a_home_with_a_database_keeps_its_own(tmp_path):
    seed = fake_seed(tmp_path)
    home = tmp_path / "home"
    assert prefect_seed.seed_home({"PREFECT_HOME": str(home)}, seed)
    assert (home / "prefect.db").read_bytes() == b"seed database" and (home / "memo_store.toml").exists()
    (home / "prefect.db").write_bytes(b"my runs")
    assert not prefect_seed.seed_home({"PREFECT_HOME": str(home)}, seed)
    assert (home / "prefect.db").read_bytes() == b"my runs"


@pytest.mark.parametrize("setting", [
    {"PREFECT_API_DATABASE_CONNECTION_URL": "postgresql+asyncpg://db/prefect"},
    {"PREFECT_SERVER_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:////elsewhere.db"},
    {"EXEMPLAR_PREFECT_SEED": "0"},
])
def test_nothing_is_copied_when_prefect_uses_another_database_or_seeding_is_off(tmp_path, setting):
    home = tmp_path / "home"
    assert not prefect_seed.seed_home({"PREFECT_HOME": str(home), **setting}, fake_seed(tmp_path))
    assert not (home / "prefect.db").exists()


def test_a_seed_from_another_prefect_version_is_not_used(tmp_path):
    home = tmp_path / "home"
    assert not prefect_seed.seed_home({"PREFECT_HOME": str(home)}, fake_seed(tmp_path, version="0.0.1"))


def test_a_server_on_a_seeded_home_answers_with_the_seeds_schema(tmp_path):
    seed = prefect_seed.make_seed(tmp_path / "seed")
    assert prefect_seed._usable(seed)
    home = tmp_path / "home"
    assert prefect_seed.seed_home({"PREFECT_HOME": str(home)}, seed)
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **SERVER_ENVIRONMENT}
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen(server_command(port), env=env, stdin=subprocess.DEVNULL)
    try:
        assert _healthy(server, port, timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/block_types/filter", data=b"{}", timeout=10) as answer:
            assert answer.status == 200 and b"slug" in answer.read()  # the seed's registered block types
    finally:
        stop(server)
    assert (home / "prefect.db").stat().st_size >= (seed / "prefect.db").stat().st_size
