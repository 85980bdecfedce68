"""Reading an offline W&B run back from its files, to test what ganinv logs: wandb writes no summary file offline;
history and summary live only in the run's `run-*.wandb` transaction log (read by ganinv.loggers.wandb_files)."""

from __future__ import annotations

import json
import os

from ganinv.loggers.wandb_files import records


def wandb_written() -> None:
    """W&B writes the end of a finished run's file in its service, which may outlast `finish()`; every ganinv
    command ends its process, and with it the service. This does the same in a test's process (so that no later
    subprocess connects to this process's service either)."""
    import wandb

    wandb.teardown()


def wandb_offline_run(path: str | os.PathLike) -> dict:
    """{"id", "config", "summary", "history": [rows], "defined": {metric: its summary kinds}, "job_type", "group",
    "preempting" (marked so), "exit_code", "artifacts": [(name, type)]} of an offline run file, values
    JSON-decoded."""
    from wandb.proto import wandb_internal_pb2 as pb

    config, summary, history, run_id, defined, job_type, group = {}, {}, [], None, {}, None, None
    artifacts = []
    preempting, exit_code = False, None
    for payload in records(path):
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
        if kind == "metric":
            kinds = [k for k in ("min", "max", "mean", "last", "best") if getattr(rec.metric.summary, k, False)]
            defined[rec.metric.name] = kinds
        if kind == "run":
            run_id, job_type = rec.run.run_id or run_id, rec.run.job_type or job_type
            group = rec.run.run_group or group
        preempting |= kind == "preempting"
        if kind == "artifact":
            artifacts.append((rec.artifact.name, rec.artifact.type))
        if kind == "exit":
            exit_code = rec.exit.exit_code
        if kind in ("config", "run"):
            for i in rec.config.update if kind == "config" else rec.run.config.update:
                _put(config, i)
    last = {}  # the summary defaults to the last logged value of each key
    for row in history:
        last.update(row)
    return {"id": run_id, "config": config, "summary": {**last, **summary}, "history": history, "defined": defined,
            "job_type": job_type, "group": group, "preempting": preempting, "exit_code": exit_code,
            "artifacts": artifacts}


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
