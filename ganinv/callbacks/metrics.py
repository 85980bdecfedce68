"""`InversionMetricsCallback`: every few validations, the distortion and editability metrics of the module on a
fixed validation subset (inverted from the task's inputs, scored against its targets), by the protocol of
`ganinv-eval` — to the logger (`eval/<metric>`), to a local record (`<run_dir>/metrics.jsonl` and
`record.json`, so nothing is lost when W&B is unreachable) and, under W&B, a table target | reconstruction | edits
and a distortion-vs-editability scatter of the run's history."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytorch_lightning as pl
import torch

from ganinv.checkpoints import atomic_write
from ganinv.metrics import DistortionMetrics, EvaluationSuite, WDistribution
from ganinv.metrics.records import experiment_key, make_record, write_record
from ganinv.metrics.suite import is_toy_generator, toy_directions

from .periodic import EveryValidations, invert_subset

log = logging.getLogger("ganinv")


class InversionMetricsCallback(EveryValidations):
    """`every`: validations between evaluations (0: never); `directions`: a directions file (None: the toy
    InterFaceGAN ones on the committed toy generator, else no edit metrics); distortion uses the module's own perceptual
    and identity nets at the protocol size (the toy domain's own, 256 px otherwise)."""

    def __init__(self, run_dir: str, every: int = 1, n_images: int = 32, lec_images: int = 16,
                 directions: str | None = None, alpha: float = 3.0, fid: bool = True, distortion: str = "mse",
                 editability: str = "lec", p_norm_samples: int = 10_000):
        super().__init__(every)
        self.run_dir, self.n_images, self.lec_images = Path(run_dir), int(n_images), int(lec_images)
        self.p_norm_samples = int(p_norm_samples)
        self.directions_path, self.alpha, self.fid = directions, float(alpha), fid
        self.axes = (distortion, editability)
        self.suite, self.history = None, []

    def build(self, module) -> EvaluationSuite:
        from ganinv.editing import load_directions
        from ganinv.toy.generator import PerceptualFeatures

        g = module.generator
        toy = is_toy_generator(g)
        net, identity = getattr(module.nets, "perceptual", None), getattr(module.nets, "identity", None)
        name = "lpips" if type(net).__name__ == "LPIPS" else "perceptual"  # the metric's key, as in validation
        perceptual = {name: net} if hasattr(net, "per_image") else {}
        distortion = DistortionMetrics(None if toy else 256, perceptual, identity,
                                       image_size=g.size).to(module.device)
        directions = (load_directions(self.directions_path, g) if self.directions_path
                      else toy_directions(g) if toy else None)
        attributes = names = None
        if toy:
            from ganinv.toy import NAMES, AttributePredictor

            attributes, names = AttributePredictor(list(NAMES), normalised=True).eval().to(module.device), list(NAMES)
        features = PerceptualFeatures().to(module.device) if self.fid and toy else None
        w_distribution = WDistribution(g, self.p_norm_samples).to(module.device)
        return EvaluationSuite(distortion, w_distribution, directions, self.alpha, attributes, names, identity,
                               features, self.lec_images, batch_size=16)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.history = list(state.get("history", []))

    def on_train_start(self, trainer: pl.Trainer, module) -> None:
        # A continued run rewinds metrics.jsonl to its checkpoint: evaluations after it (a killed run's) go, as
        # they are done again.
        if trainer.is_global_zero:
            text = "".join(json.dumps(row) + "\n" for row in self.history)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.run_dir / "metrics.jsonl", lambda f: f.write(text.encode()))

    def run(self, trainer: pl.Trainer, module) -> None:
        self.suite = self.suite or self.build(module)
        sub = invert_subset(trainer, module, self.n_images)
        with torch.no_grad():
            metrics, timing = self.suite.evaluate(module.invert, module.reconstruct, sub.x, targets=sub.y,
                                                  inverted=(sub.codes, sub.recs, sub.seconds), show=False)
        step = int(module.iteration)
        row = {"iteration": step, **metrics}
        self.history.append(row)
        if not trainer.is_global_zero:
            return
        for lg in trainer.loggers:
            lg.log_metrics({f"eval/{k}": v for k, v in metrics.items()}, step=step - 1)  # Lightning's 0-based step
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        data = {"split": "validation", "n_images": len(sub.x)}
        record = make_record(module.label(), type(module).__name__, metrics, run=str(self.run_dir),
                             group=experiment_key(dict(module.hparams), data, step), iteration=step, timing=timing,
                             protocol=self.suite.distortion.protocol(),
                             data=data)
        write_record(record, self.run_dir / "record.json")
        self.log_wandb(trainer, module, sub, step, record)
        log.info("iteration %d: %s", step, ", ".join(f"{k} {metrics[k]:.4g}" for k in
                                                       ("mse", "lec", "p_norm", "edit_gain") if k in metrics))

    def log_wandb(self, trainer, module, sub, step, record) -> None:
        from pytorch_lightning.loggers import WandbLogger

        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers or not getattr(loggers[0], "logs", lambda s: True)(step):
            return
        import wandb

        run = loggers[0].experiment
        k = min(8, len(sub.x))
        images, codes, recs = sub.y[:k], sub.codes[:k], sub.recs[:k]
        with torch.no_grad():
            d = self.suite.directions
            edits = {n: module.reconstruct(codes + self.alpha * d[n].to(codes)).clamp(-1, 1)
                     for n in (d.names if d else [])}

        def image(x):
            return wandb.Image((x * 0.5 + 0.5).clamp(0, 1).permute(1, 2, 0).cpu().numpy())

        columns = ["target", "reconstruction", *[f"+{self.alpha:g} {n}" for n in edits]]
        table = wandb.Table(columns=columns, data=[[image(images[i]), image(recs[i]), *[image(e[i]) for e in
                                                                                         edits.values()]]
                                                   for i in range(k)])
        x, y = self.axes
        points = wandb.Table(columns=["iteration", x, y],
                             data=[[r["iteration"], r.get(x), r.get(y)] for r in self.history])
        run.log({"eval/samples": table, "eval/tradeoff": wandb.plot.scatter(points, x, y, title=f"{x} vs {y}"),
                 "trainer/global_step": step}, step=step)
        run.summary["ganinv_record"] = json.loads(json.dumps(record, default=str))
