"""Reading an offline W&B run back from its files, to test what ganinv logs: wandb writes no summary file offline;
history and summary live only in the run's `run-*.wandb` transaction log (leveldb-log blocks of protobuf
`Record`s)."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

_BLOCK, _HEADER = 32768, 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def wandb_log_records(path: str | os.PathLike) -> Iterator[bytes]:
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


def wandb_offline_run(path: str | os.PathLike) -> dict:
    """{"config", "summary", "history": [rows]} of an offline run file, values JSON-decoded."""
    from wandb.proto import wandb_internal_pb2 as pb

    config, summary, history = {}, {}, []
    for payload in wandb_log_records(path):
        rec = pb.Record()
        rec.ParseFromString(payload)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            row: dict = {}
            for i in rec.history.item:
                _put(row, i)
            history.append(row)
        elif kind == "summary":
            for i in rec.summary.update:
                _put(summary, i)
            for i in rec.summary.remove:
                summary.pop(i.key or i.nested_key[0], None)
        elif kind in ("config", "run"):
            for i in rec.config.update if kind == "config" else rec.run.config.update:
                _put(config, i)
    last = {}  # the summary defaults to the last logged value of each key
    for row in history:
        last.update(row)
    return {"config": config, "summary": {**last, **summary}, "history": history}


def _put(target: dict, item) -> None:
    """Set an item's JSON value at its key, or at its nested key (media and dicts are logged nested)."""
    path = [item.key] if item.key else list(item.nested_key)
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = _json(item.value_json)


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
