"""Evaluation records: one JSON file per evaluation (what `ganinv-eval` and the metrics callback write), read back
from folders, from W&B offline run directories (their `run-*.wandb` transaction logs) or from a W&B project.

A record: {"ganinv_record": 1, "name", "method", "checkpoint", "generator": {"hash", "config"}, "data",
"metrics": {name: value}, "protocol": {name: text}, "timing", "config", "config_hash", "created"}.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from ganinv.checkpoints import CheckpointError, atomic_write
from ganinv.warn import warn

REQUIRED = ("name", "method", "metrics")
VERSION = 1


def make_record(name: str, method: str, metrics: dict, **fields) -> dict:
    """A complete record; `config` (a plain dict) also gives `config_hash`."""
    config = fields.get("config") or {}
    text = json.dumps(config, sort_keys=True, default=str)
    return {"ganinv_record": VERSION, "name": name, "method": method,
            "metrics": {k: float(v) for k, v in metrics.items()}, **fields,
            "config_hash": hashlib.sha256(text.encode()).hexdigest()[:16],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_record(record: dict, path: str | os.PathLike) -> Path:
    text = json.dumps(record, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(Path(path), lambda f: f.write(text.encode()))


def check_record(record: object, source: str) -> dict | None:
    """The record if it has every required field with numeric metrics, else None after a warning naming `source`."""
    if not isinstance(record, dict) or record.get("ganinv_record") is None:
        warn(f"{source}: not a ganinv record (no 'ganinv_record' field); skipped")
        return None
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        warn(f"{source}: record without {', '.join(missing)}; skipped")
        return None
    bad = [k for k, v in record["metrics"].items() if not isinstance(v, (int, float))] \
        if isinstance(record["metrics"], dict) else ["metrics"]
    if bad:
        warn(f"{source}: non-numeric metric {bad[0]!r}; skipped")
        return None
    return {**record, "source": source}


def read_records(folder: str | os.PathLike) -> list[dict]:
    """Every record under `folder`: `*.json` files that are records, and W&B offline runs (`run-*.wandb`) whose
    summary holds one; malformed or partial ones are skipped with a warning naming the file."""
    root = Path(folder)
    if not root.is_dir():
        raise CheckpointError(root, "is not a folder of records.", "Pass the folder ganinv-eval wrote to.")
    out = []
    for path in sorted(root.rglob("*.json")):
        if "wandb" in path.parts and path.name != "record.json":
            continue  # W&B's own metadata files
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            warn(f"{path}: unreadable record ({type(err).__name__}: {err}); skipped")
            continue
        if isinstance(data, dict) and "ganinv_record" in data:
            rec = check_record(data, str(path))
            if rec:
                out.append(rec)
    for path in sorted(root.rglob("run-*.wandb")):
        rec = wandb_offline_record(path)
        if rec is not None:
            out.append(rec)
    return out


# ---- W&B offline runs: a leveldb-style log of protobuf `Record`s --------------------------------------------------
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


def wandb_offline_record(path: str | os.PathLike) -> dict | None:
    """The ganinv record a run logged to its summary (key `ganinv_record`), or None if it has none."""
    try:
        run = wandb_offline_run(path)
    except (OSError, ValueError) as err:
        warn(f"{path}: unreadable W&B run ({err}); skipped")
        return None
    record = run["summary"].get("ganinv_record")
    if record is None:
        return None
    return check_record(record, str(path))


def wandb_project_records(project: str) -> list[dict]:
    """Records in the summaries of a W&B project's runs (`entity/project`), through the public API (online)."""
    import wandb

    out = []
    for run in wandb.Api().runs(project):
        record = run.summary.get("ganinv_record")
        if record is not None:
            rec = check_record(dict(record), f"wandb:{project}/{run.id}")
            if rec:
                out.append(rec)
    return out


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
