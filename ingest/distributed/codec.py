"""What travels between the coordinator and the workers.

Tasks carry file *bytes* (workers need no access to the share: SMB, NFS or a laptop's disk all
work) and are serialised with msgpack (JSON would base64 the bytes: +78 % on the broker instead
of +33 %). A result is one msgpack map per file with the dense vectors as raw little-endian
float32 (3.7x smaller than JSON floats and about free to encode; float32 is what the model
computes, so the index receives the same numbers as from an in-process sync).

Every result names the work it answers by *content*: the file's path, its sha256 and a
fingerprint of the chunking settings and the embedder. A coordinator accepts a result only for
a file it has in flight with exactly that key and fingerprint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from core.settings import EmbeddingSettings
from ingest.parsing.workers import ChunkData

WIRE_VERSION = 1
OK, ERROR, FATAL = "ok", "error", "fatal"


def job_key(rel_path: str, sha256: str) -> str:
    return f"{rel_path}\x00{sha256}"


@dataclass(frozen=True)
class EmbedderIdentity:
    """What must agree between the coordinator's config and a worker's embedder."""

    model_id: str
    backend: str
    max_seq_length: int | None  # None with a server: the server decides

    def describe(self) -> str:
        seq = f", max_seq_length {self.max_seq_length}" if self.max_seq_length else ""
        return f"model {self.model_id!r} on backend {self.backend!r}{seq}"

    def to_wire(self) -> list[Any]:
        return [self.model_id, self.backend, self.max_seq_length]

    @staticmethod
    def from_wire(data: list[Any]) -> EmbedderIdentity:
        return EmbedderIdentity(str(data[0]), str(data[1]), data[2])


def identity_of(settings: EmbeddingSettings) -> EmbedderIdentity:
    """The identity a sync with ``settings`` expects, known without loading the model."""
    from ingest.encoding.embed import configured_model_id

    seq = None if settings.backend == "openai" else settings.max_seq_length
    return EmbedderIdentity(configured_model_id(settings), settings.backend, seq)


def fingerprint(parsing_json: str, identity: EmbedderIdentity) -> str:
    """Results made with other chunking settings or another embedder never match."""
    text = f"{parsing_json}\x00{identity.to_wire()!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class TaskHeader:
    channel: str
    run: str
    batch: str
    attempt: int
    parsing: str  # IngestSettings.parsing_json() of the coordinator
    embedder: EmbedderIdentity
    dim: int | None  # the collection's dimension, when the index already has one

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.parsing, self.embedder)

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": WIRE_VERSION,
            "channel": self.channel,
            "run": self.run,
            "batch": self.batch,
            "attempt": self.attempt,
            "parsing": self.parsing,
            "embedder": self.embedder.to_wire(),
            "dim": self.dim,
        }

    @staticmethod
    def from_wire(data: dict[str, Any]) -> TaskHeader:
        if data.get("v") != WIRE_VERSION:
            raise ValueError(f"task format {data.get('v')!r}, this worker reads {WIRE_VERSION}")
        return TaskHeader(
            channel=str(data["channel"]),
            run=str(data["run"]),
            batch=str(data["batch"]),
            attempt=int(data["attempt"]),
            parsing=str(data["parsing"]),
            embedder=EmbedderIdentity.from_wire(data["embedder"]),
            dim=data["dim"],
        )


@dataclass(frozen=True)
class FileJob:
    rel_path: str
    sha256: str
    data: bytes

    @property
    def key(self) -> str:
        return job_key(self.rel_path, self.sha256)

    def to_wire(self) -> dict[str, Any]:
        return {"path": self.rel_path, "sha256": self.sha256, "data": self.data}

    @staticmethod
    def from_wire(data: dict[str, Any]) -> FileJob:
        return FileJob(str(data["path"]), str(data["sha256"]), bytes(data["data"]))


@dataclass(frozen=True)
class FileResult:
    """One file's outcome (``ok``: chunks + vectors; ``error``: a file reason code), or a
    worker's ``fatal`` error (it cannot work for this sync at all)."""

    kind: str
    rel_path: str
    sha256: str
    fingerprint: str
    worker: str
    chunks: list[ChunkData] | None = None
    vectors: list[list[float]] | None = None
    code: str | None = None
    message: str | None = None

    @property
    def key(self) -> str:
        return job_key(self.rel_path, self.sha256)

    def encode(self) -> bytes:
        data: dict[str, Any] = {
            "v": WIRE_VERSION,
            "kind": self.kind,
            "path": self.rel_path,
            "sha256": self.sha256,
            "fp": self.fingerprint,
            "worker": self.worker,
            "code": self.code,
            "message": self.message,
        }
        if self.chunks is not None and self.vectors is not None:
            matrix = np.ascontiguousarray(np.asarray(self.vectors, dtype="<f4"))
            data["chunks"] = [list(c) for c in self.chunks]
            data["dim"] = int(matrix.shape[1]) if matrix.ndim == 2 else 0
            data["vectors"] = matrix.tobytes()
        return bytes(msgpack.packb(data, use_bin_type=True))

    @staticmethod
    def decode(blob: bytes) -> FileResult:
        data = msgpack.unpackb(blob, raw=False)
        if data.get("v") != WIRE_VERSION:
            raise ValueError(f"result format {data.get('v')!r}, expected {WIRE_VERSION}")
        chunks: list[ChunkData] | None = None
        vectors: list[list[float]] | None = None
        if "chunks" in data:
            chunks = [(c[0], c[1], c[2], c[3], list(c[4]), list(c[5])) for c in data["chunks"]]
            matrix = np.frombuffer(data["vectors"], dtype="<f4").reshape(-1, int(data["dim"]))
            vectors = matrix.tolist()
        return FileResult(
            kind=str(data["kind"]),
            rel_path=str(data["path"]),
            sha256=str(data["sha256"]),
            fingerprint=str(data["fp"]),
            worker=str(data["worker"]),
            chunks=chunks,
            vectors=vectors,
            code=data.get("code"),
            message=data.get("message"),
        )
