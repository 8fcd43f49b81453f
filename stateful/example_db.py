"""Where Hypothesis keeps its examples: the project folder, and a team's shared one.

Hypothesis's default is `.hypothesis/` under whatever folder pytest was
started from; pgfrag's is the project folder, wherever it is run from. A
team shares one by naming it in PGFRAG_SHARED_DB; Hypothesis then reads
and writes both (a MultiplexedDatabase):

    PGFRAG_SHARED_DB=redis://db.example.org:6379/0     (pip install redis)
    PGFRAG_SHARED_DB=github:OWNER/REPO                 (read-only: CI's artifact)
    PGFRAG_SHARED_DB=github:OWNER/REPO@ARTIFACT-NAME

A GitHub artifact database is read-only here: CI uploads its
`.hypothesis/examples` folder as the artifact, and developers read it
(GITHUB_TOKEN in the environment; see Hypothesis's GitHubArtifactDatabase).
"""

from __future__ import annotations

from pathlib import Path

from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    GitHubArtifactDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

ENV = "PGFRAG_SHARED_DB"


class SharedDatabaseError(ValueError):
    pass


def shared_database(spec: str, project: Path) -> ExampleDatabase:
    if spec.startswith("redis://"):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError as exc:
            raise SharedDatabaseError(
                f"{ENV}={spec}: the Redis database needs the redis package: pip install redis"
            ) from exc
        return RedisExampleDatabase(redis.Redis.from_url(spec))
    if spec.startswith("github:"):
        repo, _, artifact = spec.removeprefix("github:").partition("@")
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise SharedDatabaseError(f"{ENV}={spec}: expected github:OWNER/REPO[@ARTIFACT]")
        artifact = artifact or "hypothesis-example-db"  # Hypothesis's own default name
        cache = project / ".hypothesis" / "github-artifacts" / artifact
        return ReadOnlyDatabase(
            GitHubArtifactDatabase(owner, name, artifact_name=artifact, path=cache)
        )
    raise SharedDatabaseError(
        f"{ENV}={spec!r}: expected redis://HOST:PORT[/DB] or github:OWNER/REPO[@ARTIFACT]"
    )


def example_database(project: Path, shared: str | None = None) -> ExampleDatabase:
    """The project's own database, multiplexed with the shared one if named."""
    local = DirectoryBasedExampleDatabase(str(project / ".hypothesis" / "examples"))
    if not shared:
        return local
    return MultiplexedDatabase(local, shared_database(shared, project))
