"""W&B's offline transaction logs (`<save_dir>/wandb/offline-run-*-<id>/run-<id>.wandb`), read without W&B: what
a continued offline run needs to know of the steps it already holds. The format: a 7-byte ':W&B' header, then
leveldb-log blocks of 32 KiB holding chunks (CRC-32, length, FULL / FIRST / MIDDLE / LAST) of protobuf `Record`s."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

_BLOCK, _HEADER = 32768, 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: str | os.PathLike) -> Iterator[bytes]:
    """The raw protobuf payloads of a `run-*.wandb` file (7-byte ':W&B' file header, 32 KiB blocks of chunks
    with a CRC-32, a length and a FULL / FIRST / MIDDLE / LAST type)."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log (no ':W&B' header)")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _HEADER:  # block tail too short for a chunk header: zero padding
            pos += room
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        if kind == 0 and length == 0:
            pos += room
            continue
        if len(chunk) < length or zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF != crc:
            break  # a torn last write (the run was killed): keep what came before
        pos += _HEADER + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def history_rows(path: str | os.PathLike) -> Iterator[dict]:
    """The history rows of one transaction log, {key: JSON text}."""
    from wandb.proto import wandb_internal_pb2 as pb

    for payload in records(path):
        rec = pb.Record()
        rec.ParseFromString(payload)
        if rec.WhichOneof("record_type") == "history":
            yield {i.key or "/".join(i.nested_key): i.value_json for i in rec.history.item}


def last_offline_step(folder: str | os.PathLike, run_id: str) -> int:
    """The last history step of run `run_id` in the offline runs under `folder` (-1: none)."""
    steps = [int(row["_step"]) for f in Path(folder).glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
             for row in history_rows(f) if "_step" in row]
    return max(steps, default=-1)
