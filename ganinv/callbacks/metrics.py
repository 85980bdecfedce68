"""`InversionMetricsCallback`: every few validations, the distortion and editability metrics of the module on a
fixed validation subset (inverted from the task's inputs, scored against its targets), by the protocol of
`ganinv-eval` — to the logger (`eval/<metric>`), to a local record (`<run_dir>/metrics.jsonl` and
`record.json`, so nothing is lost when W&B is unreachable) and, under W&B (each metric's summary its best: min or
max as lower or higher is better), a table target | reconstruction | edits
and a distortion-vs-editability scatter of the run's history."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch

from ganinv.checkpoints import atomic_write, state_hash
from ganinv.editing import edit
from ganinv.metrics import EvaluationSuite
from ganinv.metrics.records import experiment_key, make_record, write_record
from ganinv.metrics.suite import toy_labels

from .periodic import EveryValidations, ValidationSubset

log = logging.getLogger("ganinv")


def summary_of(metric: str) -> str:
    """A metric's best: "max" when higher is better, else "min"."""
    from ganinv.metrics.names import higher_is_better

    return "max" if higher_is_better(metric) else "min"


def best_row(history: list[dict], metric: str | list[str]) -> dict:
    """The evaluation (a row of `metrics.jsonl`) best on `metric`; the latest when no row has it, or when several
    metrics are named (no row is best on all of them)."""
    if not isinstance(metric, str):
        if len(metric) > 1:
            return history[-1]
        metric = metric[0]
    rows = [r for r in history if isinstance(r.get(metric), (int, float))]
    if not rows:
        return history[-1]
    sign = -1 if summary_of(metric) == "max" else 1
    return min(reversed(rows), key=lambda r: sign * r[metric])


def define_summaries(logger, metrics: dict) -> None:
    """W&B's summary of each `eval/<metric>` is its best value (min or max), once per run."""
    from pytorch_lightning.loggers import WandbLogger

    if not isinstance(logger, WandbLogger) or getattr(logger, "_ganinv_summaries", False):
        return
    run = logger.experiment
    for k in metrics:
        run.define_metric(f"eval/{k}", summary=summary_of(k))
    logger._ganinv_summaries = True


class InversionMetricsCallback(EveryValidations):
    """`suite()`: the `EvaluationSuite` of the run's `evaluation` and `metrics` config groups (built at the first
    evaluation; `ganinv.metrics.build_suite`), the protocol of `ganinv-eval`; `subset`: the validation images
    it evaluates (`n_images` of them); `every`: validations between evaluations (0: never).

    `record.json` holds the run's best evaluation on `objective` (the run's declared summary: min, or max for a
    higher-is-better metric), its iteration, the latest evaluation (`last`), whether training finished, and the
    run's `fields` (`ganinv-train` gives its experiment key, config, overrides, generator and data); each
    evaluation also puts `eval/<metric>` in the trainer's metrics, where `best.ckpt`'s monitor finds it."""

    def __init__(self, run_dir: str, suite: Callable[[], EvaluationSuite], subset: ValidationSubset, every: int = 1,
                 n_images: int = 32, distortion: str = "mse", editability: str = "lec",
                 objective: str | list[str] = "mse", fields: dict | None = None):
        from ganinv.metrics.names import objectives

        super().__init__(every)
        self.run_dir, self.make_suite, self.subset, self.n_images = Path(run_dir), suite, subset, int(n_images)
        self.objectives, self.fields = objectives(objective), dict(fields or {})
        self.axes = (distortion, editability)
        self.suite, self.history, self.record = None, [], None
        self.weights: dict[int, str] = {}  # iteration -> the hash of the evaluated weights

    def state_dict(self) -> dict:
        return {**super().state_dict(), "history": self.history, "record": self.record, "weights": self.weights}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.history, self.record = list(state.get("history", [])), state.get("record")
        self.weights = {int(k): str(v) for k, v in state.get("weights", {}).items()}

    def on_train_start(self, trainer: pl.Trainer, module) -> None:
        # A continued run rewinds metrics.jsonl to its checkpoint: evaluations after it (a killed run's) go, as
        # they are done again.
        if trainer.is_global_zero:
            text = "".join(json.dumps(row) + "\n" for row in self.history)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.run_dir / "metrics.jsonl", lambda f: f.write(text.encode()))

    def run(self, trainer: pl.Trainer, module) -> None:
        began = time.perf_counter()
        self.suite = self.suite or self.make_suite().to(module.device)
        sub = self.subset.inverted(trainer, module, self.n_images)
        with torch.no_grad():
            metrics, timing = self.suite.evaluate(module.invert, module.reconstruct, sub.x, targets=sub.y,
                                                  inverted=sub.inverted, show=False,
                                                  labels=None if sub.attrs is None else toy_labels(sub.attrs))
        if missing := [name for name in self.objectives if name not in metrics]:
            from ganinv.methods import ConfigError

            raise ConfigError(f"objective={missing[0]} is not a metric of the evaluation; it has: "
                              f"{', '.join(sorted(metrics))}.")
        step = module.iterations_done()
        row = {"iteration": step, **metrics}
        self.history.append(row)
        self.weights[step] = state_hash(module)  # what the record of this evaluation measured
        trainer.callback_metrics.update({f"eval/{k}": torch.tensor(v) for k, v in metrics.items()})
        if not trainer.is_global_zero:
            return
        for lg in trainer.loggers:
            define_summaries(lg, metrics)
            lg.log_metrics({f"eval/{k}": v for k, v in metrics.items()}, step=step - 1)  # Lightning's 0-based step
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        best = best_row(self.history, self.objectives)
        one = len(self.objectives) == 1  # else the record is the last evaluation, and last.ckpt its weights
        data = {**self.fields.get("data", {}), "split": "validation", "n_images": len(sub.x)}
        fields = {"group": experiment_key(dict(module.hparams), data, module.max_iterations), **self.fields,
                  "data": data}
        self.record = make_record(
            module.label(), type(module).__name__, {k: v for k, v in best.items() if k != "iteration"},
            run=str(self.run_dir), iteration=best["iteration"],
            checkpoint=str(self.run_dir / "checkpoints" / ("best.ckpt" if one else "last.ckpt")),
            weights=self.weights.get(best["iteration"]),
            selected={"objective": self.objectives[0], "summary": summary_of(self.objectives[0])} if one else
            {"objective": self.objectives, "summary": "last"},
            last={"iteration": step, "metrics": metrics}, finished=False, max_iterations=module.max_iterations,
            timing=timing, protocol=self.suite.protocol(), metric_card=self.suite.card(), **fields)
        write_record(self.record, self.run_dir / "record.json")
        self.log_wandb(trainer, module, sub, step, self.record)
        log.info("iteration %d: %s (evaluated in %.1f s)", step, ", ".join(
            f"{k} {metrics[k]:.4g}" for k in ("mse", "lec", "p_norm", "edit_gain") if k in metrics),
            time.perf_counter() - began)

    def pruned(self, trainer: pl.Trainer, iteration: int) -> None:
        """The run stops here, pruned by an Optuna sweep: its record says so."""
        if trainer.is_global_zero and self.record is not None:
            self.record["pruned"] = {"iteration": int(iteration)}
            write_record(self.record, self.run_dir / "record.json")

    def on_train_end(self, trainer: pl.Trainer, module) -> None:
        if trainer.is_global_zero and self.record is not None and module.iterations_done() >= module.max_iterations:
            self.record["finished"] = True
            write_record(self.record, self.run_dir / "record.json")

    def log_wandb(self, trainer, module, sub, step, record) -> None:
        from pytorch_lightning.loggers import WandbLogger

        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers or not getattr(loggers[0], "logs", lambda s: True)(step):
            return
        import wandb

        run = loggers[0].experiment
        k = min(8, len(sub.x))
        images, inv, recs = sub.y[:k], sub.inverted.inversion[:k], sub.inverted.recs[:k]
        with torch.no_grad():
            d = self.suite.directions
            edits = {n: module.reconstruct(edit(inv, d[n], self.suite.alpha, d.layers)).clamp(-1, 1)
                     for n in (d.names if d else [])}

        def image(x):
            return wandb.Image((x * 0.5 + 0.5).clamp(0, 1).permute(1, 2, 0).cpu().numpy())

        columns = ["target", "reconstruction", *[f"+{self.suite.alpha:g} {n}" for n in edits]]
        table = wandb.Table(columns=columns, data=[[image(images[i]), image(recs[i]), *[image(e[i]) for e in
                                                                                         edits.values()]]
                                                   for i in range(k)])
        x, y = self.axes
        points = wandb.Table(columns=["iteration", x, y],
                             data=[[r["iteration"], r.get(x), r.get(y)] for r in self.history])
        run.log({"eval/samples": table, "eval/tradeoff": wandb.plot.scatter(points, x, y, title=f"{x} vs {y}"),
                 "trainer/global_step": step}, step=step)
        run.summary["ganinv_record"] = json.loads(json.dumps(record, default=str))
