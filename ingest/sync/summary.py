"""What one sync did: the counters ``ingest sync --json`` prints and ``ingest_sync_runs`` keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The JSON lists of failed/skipped files are capped; the counts are always exact.
MAX_LISTED = 1000


@dataclass(frozen=True)
class FileIssue:
    path: str
    code: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "reason": self.reason}


@dataclass
class SyncSummary:
    source: str
    run_id: int = 0
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    renamed: int = 0
    permissions_updated: int = 0
    failed_count: int = 0
    skipped_count: int = 0
    chunks: int = 0
    embedded: int = 0
    repaired: int = 0
    orphans_removed: int = 0
    seconds: float = 0.0
    failed: list[FileIssue] = field(default_factory=list)
    skipped: list[FileIssue] = field(default_factory=list)
    # folders the walk could not list: a local tree keeps their files (access recomputed from
    # the rules); an SMB share whose service account lost access drops what was indexed below
    # them -- reported either way, never silent
    unlistable: list[FileIssue] = field(default_factory=list)

    def add_unlistable(self, issue: FileIssue) -> None:
        if len(self.unlistable) < MAX_LISTED:
            self.unlistable.append(issue)

    # With distributed workers: batches sent, resends, duplicates, files per worker.
    distributed: dict[str, Any] | None = None

    def add_issue(self, status: str, issue: FileIssue) -> None:
        if status == "failed":
            self.failed_count += 1
            if len(self.failed) < MAX_LISTED:
                self.failed.append(issue)
        else:
            self.skipped_count += 1
            if len(self.skipped) < MAX_LISTED:
                self.skipped.append(issue)

    def counters(self) -> dict[str, int | float]:
        return {
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "renamed": self.renamed,
            "permissions_updated": self.permissions_updated,
            "failed": self.failed_count,
            "skipped": self.skipped_count,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "repaired": self.repaired,
            "orphans_removed": self.orphans_removed,
            "seconds": round(self.seconds, 3),
        }

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "run_id": self.run_id}
        out.update(self.counters())
        out["failed"] = [i.as_dict() for i in self.failed]
        out["skipped"] = [i.as_dict() for i in self.skipped]
        out["unlistable"] = [i.as_dict() for i in self.unlistable]
        out["failed_count"] = self.failed_count
        out["skipped_count"] = self.skipped_count
        out["lists_truncated"] = self.failed_count > len(self.failed) or self.skipped_count > len(
            self.skipped
        )
        if self.distributed is not None:
            out["distributed"] = dict(self.distributed)
        return out
