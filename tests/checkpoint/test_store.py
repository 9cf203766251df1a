"""The ``CheckpointStore`` contract, run against both stores (memory and SQLite): round
trips, a save replaces only what it names, atomic saves, close."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from streamvisor.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    MemoryCheckpointStore,
    SQLiteCheckpointStore,
)

TICKER = Checkpoint("41", (("40", "d40"), ("41", "d41")), 1_700_000_000.5)
NEWS = Checkpoint(None, (), 1_700_000_001.0)


class _FailingMapping(Mapping[str, Checkpoint]):
    """Yields one checkpoint, then fails: a save interrupted half-way."""

    def __getitem__(self, key: str) -> Checkpoint:
        return Checkpoint("new")

    def __iter__(self) -> Iterator[str]:
        yield "ticker"
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 2


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CheckpointStore]:
    made: CheckpointStore
    if request.param == "memory":
        made = MemoryCheckpointStore()
    else:
        made = SQLiteCheckpointStore(str(tmp_path / "cp.db"))
    yield made
    made.close()


def test_an_empty_store_loads_nothing(store: CheckpointStore) -> None:
    assert store.load() == {}


def test_saved_checkpoints_load_back_equal(store: CheckpointStore) -> None:
    store.save({"ticker": TICKER, "news": NEWS})
    assert store.load() == {"ticker": TICKER, "news": NEWS}


def test_a_save_replaces_the_stream_it_names_and_keeps_the_others(
    store: CheckpointStore,
) -> None:
    store.save({"ticker": TICKER, "news": NEWS})
    newer = Checkpoint("42", (("41", "d41"), ("42", "d42")), 1_700_000_002.0)
    store.save({"ticker": newer})
    assert store.load() == {"ticker": newer, "news": NEWS}


def test_a_save_that_fails_half_way_stores_nothing(store: CheckpointStore) -> None:
    store.save({"ticker": TICKER})
    with pytest.raises(RuntimeError):
        store.save(_FailingMapping())
    assert store.load() == {"ticker": TICKER}


def test_a_closed_store_refuses_work_and_closes_twice(store: CheckpointStore) -> None:
    store.close()
    store.close()
    with pytest.raises(CheckpointError):
        store.load()
    with pytest.raises(CheckpointError):
        store.save({"ticker": TICKER})
