"""Evaluating a checkpoint or an optimiser on a data set's held-out split -> one JSON record (what `ganinv-eval`
runs; conf/eval.yaml; the metrics and their protocols in docs/evaluation.md)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ganinv.data.transforms import PROTOCOL_SIZE
from ganinv.distributed import rank_and_world

log = logging.getLogger("ganinv")


def held_out(cfg, module, full_targets: bool = False) -> dict[str, torch.Tensor]:
    """The first `n_images` of the data set's validation split: "x" (the task's inputs, at the method's input size
    unless set), "y" (targets, unless set at 256 px or the generator's size if smaller; `full_targets`: at the
    generator's size, as published scripts read the original files) and, where the source has them, "w" (true
    codes of generator samples) and "attrs" (the toy renderer's attributes)."""
    from hydra.utils import instantiate

    from ganinv.errors import OptionError
    from ganinv.methods import ConfigError

    if cfg.align and cfg.data.source != "images":
        raise ConfigError(f"align=true aligns photos, but data={cfg.data.source}: use data=images "
                          "data.images.root=<folder>.")
    generator = module.generator
    kwargs = {"generator": generator} if cfg.data.source == "generated" else {}
    if cfg.align:
        kwargs["images"] = {**cfg.data.images, "align": True}
    sizes = {"input_size": module.input_size,
             "target_size": generator.size if full_targets else min(PROTOCOL_SIZE, generator.size)}
    kwargs |= {k: v for k, v in sizes.items() if cfg.data.get(k) is None}
    target = cfg.data.get("target_size") or sizes["target_size"]
    if target != generator.size and cfg.metrics.get("size") is None:
        raise ConfigError(f"data.target_size={target} but the generator makes {generator.size}-px images and these "
                          "metrics compare at the images' own size: leave data.target_size unset (it follows the "
                          "generator) or choose metrics with a size.")
    dm = instantiate(cfg.data, **kwargs)
    dm.setup("validate")
    if dm.val_set is None:
        raise OptionError("the data set has no held-out split to evaluate on: set the data source's validation size "
                          "(e.g. data.toy.n_val) above 0.")
    n = min(int(cfg.n_images), len(dm.val_set))
    items = [dm.val_set[i] for i in range(n)]
    out = {k: torch.stack([it[k] for it in items]) for k in ("x", "y", "w", "attrs") if k in items[0]}
    return out


# What a training run's evaluations were measured on and by; ganinv-eval on one of its checkpoints takes them
# from the run's config.yaml (ganinv-eval option: the run's key), unless the command line sets them.
RUN_PROTOCOL = {"data": "data", "metrics": "metrics", "editability": "editability", "fid": "fid",
                "n_images": "callbacks.metrics.n_images", "batch_size": "data.val_batch_size"}


def the_runs_protocol(cfg, given: set[str]) -> list[str]:
    """Where `cfg.checkpoint` is a ganinv training run's (`<run>/checkpoints/*.ckpt` beside `<run>/config.yaml`),
    each option of RUN_PROTOCOL becomes the run's, but for what the command line sets (`given`: its keys, e.g.
    `metrics` or `editability.alpha`), so that the record measures what the run's own evaluations measured; the
    options taken."""
    from omegaconf import OmegaConf, open_dict

    ckpt = Path(str(cfg.checkpoint)) if cfg.checkpoint else None
    config = ckpt.parent.parent / "config.yaml" if ckpt is not None and ckpt.parent.name == "checkpoints" else None
    if config is None or not config.is_file():
        return []
    run = OmegaConf.load(config)
    taken = []
    with open_dict(cfg):
        for key, source in RUN_PROTOCOL.items():
            value = OmegaConf.select(run, source)
            if key == "batch_size" and value is None:
                value = OmegaConf.select(run, "data.batch_size")
            if key in given or value is None:
                continue
            for inside in sorted(k for k in given if k.startswith(f"{key}.")):  # the command line's, kept
                OmegaConf.update(value, inside[len(key) + 1:], OmegaConf.select(cfg, inside), force_add=True)
            cfg[key] = value
            taken.append(key)
    return taken


def command_line_keys() -> set[str]:
    """The keys and groups this Hydra job's command line sets (`data`, `editability.alpha`, ...)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    return {o.key_or_group.replace("/", ".") for o in parsed}


def start_processes(devices: int) -> torch.device:
    """`devices` processes (this one is rank 0; the others run the same command) in one process group: GPUs where
    there are enough, else CPU processes with gloo. The device this process evaluates on."""
    if devices <= 1:
        return torch.device("cpu")
    from lightning_fabric import Fabric

    gpus = torch.cuda.is_available() and torch.cuda.device_count() >= devices
    fabric = Fabric(accelerator="cuda" if gpus else "cpu", devices=devices, strategy="ddp")
    fabric.launch()
    return fabric.device


def evaluate(cfg) -> Path | None:
    """The record of the configured evaluation; run as `ganinv-eval` on a training run's checkpoint, what the
    command line leaves unset is the run's protocol (`the_runs_protocol`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from ganinv.checkpoints import state_hash
    from ganinv.checkpoints.pieces import Pieces
    from ganinv.metrics import build_suite, invert_images
    from ganinv.metrics.records import checkpoint_run, experiment_key, make_record, write_record
    from ganinv.metrics.suite import FID, toy_labels
    from ganinv.workflows.inverter import build_inverter, job_of

    taken = the_runs_protocol(cfg, command_line_keys()) if HydraConfig.initialized() else []
    torch.manual_seed(int(cfg.seed))
    if str(cfg.fid) not in FID:
        raise SystemExit(f"ganinv-eval: error: fid={cfg.fid!r} is not one of {', '.join(FID)}.")
    device = start_processes(int(cfg.devices))
    rank, world = rank_and_world()
    inverter = build_inverter(cfg).to(device)
    module, refiner, generator = inverter.module, inverter.refiner, inverter.generator
    distortion = instantiate(cfg.metrics)
    data = {k: v.to(device) for k, v in held_out(cfg, module, distortion.full_targets).items()}
    suite = build_suite(generator, distortion, cfg.editability, str(cfg.fid), int(cfg.batch_size))
    suite = suite.to(device)

    log.info("evaluating %s on %d held-out images of %s%s%s", inverter.name(), len(data["y"]),
             cfg.data.source, f", {world} processes" if world > 1 else "",
             f"; the run's {', '.join(taken)}" if taken else "")
    pieces = Pieces(Path(f"{cfg.output}.partial"), job_of(cfg, "devices", "wandb"))  # the batches inverted so far
    inverted = invert_images(inverter, inverter.reconstruct, data["x"], int(cfg.batch_size), pieces)
    # LEC re-inverts edited images: only their codes count
    metrics, timing = suite.evaluate(inverter.codes, inverter.reconstruct, data["x"], data.get("w"), targets=data["y"],
                                     inverted=inverted, show=rank == 0,
                                     labels=toy_labels(data["attrs"]) if "attrs" in data else None)
    if rank > 0:  # rank 0 writes the record
        return None
    method = type(module).__name__
    name = cfg.name or inverter.name()
    config = OmegaConf.to_container(cfg, resolve=True)
    paths = ("checkpoint", "refine", "output", "name", "wandb", "weights_dir", "use_generator")
    group = experiment_key(dict(module.hparams), {k: v for k, v in config.items() if k not in paths},
                           refiner.setting() if refiner is not None else None)
    done = getattr(module, "iterations_done", None)
    record = make_record(
        name, method, metrics, group=group, checkpoint=cfg.checkpoint, weights=state_hash(module),
        iteration=done() if done and cfg.checkpoint else None, **(checkpoint_run(cfg.checkpoint) if cfg.checkpoint
                                                                  else {}),
        refine=None if refiner is None else {"refiner": type(refiner).__name__, **refiner.options},
        generator={"hash": state_hash(generator), "config": dict(getattr(generator, "config", {}))},
        data={"source": cfg.data.source, "split": "validation", "n_images": len(data["y"]), "seed": int(cfg.seed)},
        protocol=suite.protocol(), metric_card=suite.card(), timing=timing, config=config)
    path = write_record(record, cfg.output)
    pieces.clear()
    if cfg.wandb.mode != "disabled":
        from ganinv.loggers.wandb import init_run

        w = cfg.wandb
        run = init_run(str(w.dir or Path(cfg.output).parent), w.project, w.entity, w.group, list(w.tags), name,
                       str(w.mode), config, job_type="eval")
        run.log({f"eval/{k}": v for k, v in metrics.items()})
        run.summary.update({f"eval/{k}": v for k, v in metrics.items()})
        run.summary["ganinv_record"] = json.loads(json.dumps(record, default=str))  # string keys throughout
        run.finish()
    return path


def summary(path: Path) -> str:
    """One line on the record at `path`: its name, main metrics and speed."""
    record = json.loads(Path(path).read_text())
    metrics, timing = record["metrics"], record["timing"]
    shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in ("mse", "psnr", "lec", "p_norm") if k in metrics)
    return f"wrote {path}: {record['name']}: {shown}; {timing['seconds_per_image'] * 1000:.1f} ms per image"
