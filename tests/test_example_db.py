"""The example database: the project folder's, multiplexed with a team's shared one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

from stateful.example_db import SharedDatabaseError, example_database


def test_default_is_the_project_folder(tmp_path: Path) -> None:
    db = example_database(tmp_path)
    assert isinstance(db, DirectoryBasedExampleDatabase)
    db.save(b"key", b"value")
    assert list(db.fetch(b"key")) == [b"value"]
    assert (tmp_path / ".hypothesis" / "examples").is_dir()


def test_github_artifact_is_read_beside_the_local_one(tmp_path: Path) -> None:
    db = example_database(tmp_path, "github:pgfrag/pgfrag@hypothesis-examples")
    assert isinstance(db, MultiplexedDatabase)
    local, shared = db._wrapped  # what the multiplexer wraps
    assert isinstance(local, DirectoryBasedExampleDatabase)
    assert isinstance(shared, ReadOnlyDatabase)


@pytest.mark.parametrize("spec", ["github:only-owner", "s3://bucket", "github:a/b/c"])
def test_a_spec_that_is_not_understood_says_what_is(tmp_path: Path, spec: str) -> None:
    with pytest.raises(SharedDatabaseError, match="expected"):
        example_database(tmp_path, spec)


@pytest.mark.skipif(importlib.util.find_spec("redis") is not None, reason="redis is installed")
def test_redis_without_the_package_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(SharedDatabaseError, match="pip install redis"):
        example_database(tmp_path, "redis://localhost:6379/0")
