"""Copy the vector index to another Qdrant: the upgrade from the embedded store to a server.

``ingest migrate-index --to-url http://qdrant:6333`` reads every point of the configured index
(usually the embedded Qdrant Edge store) with its dense and lexical vectors and its payload,
creates the collection on the target with the same schema and payload indexes (through the
target's own ``ensure_collection``), and upserts the points in batches. Nothing is re-embedded.

Safe to repeat: point ids are deterministic, so writing a point twice leaves one copy. A target
that already holds points is refused unless ``--resume`` (continue an interrupted copy: the
batches a checkpoint file records as done are skipped when the source still starts with the
same points) or ``--force`` (write into it anyway; its other points stay). Stop the UI and the
scheduled sync first: the embedded store has one process at a time, and a copy of a store that
changes underneath would be stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from core.errors import (
    ConfigError,
    IndexTargetNotEmptyError,
    VectorIndexError,
)
from core.settings import IndexSettings, Settings
from ingest.index.base import VectorIndex
from ingest.model import ChunkPoint


@dataclass(frozen=True)
class IndexMigration:
    source_points: int
    copied: int
    skipped: int
    target_points: int
    dim: int

    @property
    def complete(self) -> bool:
        """Every source point was written (now or, resumed, before) and the target has them."""
        return (
            self.copied + self.skipped == self.source_points
            and self.target_points >= self.source_points
        )


@dataclass
class _Checkpoint:
    """Progress of one copy: ``batches`` batches of ``batch_size`` done, the last ending at
    point ``last_id``. Lives beside the source data; removed when the copy completes."""

    path: Path
    target: str
    batch_size: int
    batches: int = 0
    last_id: str = ""

    @classmethod
    def load(cls, path: Path, target: str, batch_size: int) -> _Checkpoint:
        fresh = cls(path, target, batch_size)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return fresh
        if data.get("target") != target or data.get("batch_size") != batch_size:
            return fresh
        return cls(path, target, batch_size, int(data["batches"]), str(data["last_id"]))

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "target": self.target,
                    "batch_size": self.batch_size,
                    "batches": self.batches,
                    "last_id": self.last_id,
                }
            )
        )
        tmp.replace(self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def checkpoint_path(data_dir: Path, target: str) -> Path:
    digest = hashlib.sha256(target.encode()).hexdigest()[:16]
    return data_dir / f"migrate-index-{digest}.json"


def _skip_done(
    source: VectorIndex, batch_size: int, checkpoint: _Checkpoint
) -> tuple[Iterator[list[ChunkPoint]], int]:
    """Skip the batches the checkpoint records as copied, if the source still starts with
    them (same batch count, same last point id); otherwise start over (rewriting a point is
    harmless: same id). Returns the remaining batches and the number of points skipped."""
    batches = source.scroll_points(batch_size)
    skipped = 0
    last: list[ChunkPoint] | None = None
    for _ in range(checkpoint.batches):
        last = next(batches, None)
        if last is None:
            break
        skipped += len(last)
    if last is not None and last[-1].id == checkpoint.last_id:
        return batches, skipped
    checkpoint.batches, checkpoint.last_id = 0, ""
    return source.scroll_points(batch_size), 0


def migrate_index(
    source: VectorIndex,
    target: VectorIndex,
    *,
    batch_size: int = 256,
    force: bool = False,
    resume: bool = False,
    checkpoint_file: Path | None = None,
    target_name: str = "",
    on_batch: Callable[[int], None] | None = None,
) -> IndexMigration:
    """Copy every point of ``source`` into ``target`` (see the module docstring)."""
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    total = source.count()
    first = next(source.scroll_points(1), None)
    dim = len(first[0].dense) if first else getattr(source, "dim", None)
    if not dim:
        raise VectorIndexError(
            "the source index holds no points and no collection: there is nothing to migrate "
            "(run `ingest sync` first, or point --config at the data dir that holds the index)"
        )
    target.ensure_collection(dim)
    existing = target.count()
    if existing and not (force or resume):
        raise IndexTargetNotEmptyError(
            f"the target index {target_name or ''} already holds {existing} points. "
            "Use --resume to continue an interrupted copy, or --force to write into it anyway "
            "(points with the same ids are replaced, others are kept)."
        )

    checkpoint = (
        _Checkpoint.load(checkpoint_file, target_name, batch_size)
        if checkpoint_file is not None
        else None
    )
    copied = skipped = 0
    if checkpoint is not None and resume and existing and checkpoint.batches:
        batches, skipped = _skip_done(source, batch_size, checkpoint)
        if on_batch is not None and skipped:
            on_batch(skipped)
    else:
        batches = source.scroll_points(batch_size)
        if checkpoint is not None:
            checkpoint.batches, checkpoint.last_id = 0, ""

    for batch in batches:
        target.upsert(batch)
        copied += len(batch)
        if checkpoint is not None:
            target.flush()
            checkpoint.batches += 1
            checkpoint.last_id = batch[-1].id
            checkpoint.save()
        if on_batch is not None:
            on_batch(len(batch))
    target.flush()
    target.optimize()
    result = IndexMigration(
        source_points=total,
        copied=copied,
        skipped=skipped,
        target_points=target.count(),
        dim=dim,
    )
    if checkpoint is not None and result.complete:
        checkpoint.clear()
    return result


def target_settings(
    settings: Settings,
    *,
    to_url: str | None,
    to_path: Path | None,
    api_key_file: Path | None,
    collection: str | None,
) -> Settings:
    """The settings of the target index: the configured ones with the index section replaced."""
    if (to_url is None) == (to_path is None):
        raise ConfigError("give exactly one of --to-url (Qdrant server) or --to-path (local mode)")
    data = settings.index.model_dump()
    data.pop("qdrant_api_key_file")
    data.update(
        backend="qdrant",
        qdrant_url=to_url,
        qdrant_path=to_path.resolve() if to_path is not None else None,
        collection=collection or settings.index.collection,
    )
    if api_key_file is not None:
        data.update(qdrant_api_key=None, qdrant_api_key_file=api_key_file)
    try:
        index = IndexSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"target index: {exc.errors()[0]['msg']}") from exc
    return settings.model_copy(update={"index": index})


def describe(settings: Settings) -> str:
    """``backend:location/collection`` of an index configuration (messages, checkpoints)."""
    cfg = settings.index
    place = cfg.qdrant_url or cfg.qdrant_path or settings.index_dir
    return f"{cfg.backend}:{place}/{cfg.collection}"
