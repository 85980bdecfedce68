"""`ganinv-invert`: a folder of images -> `codes.pt` ({file name: W+ code [n_latent, style_dim]}) and one
reconstruction PNG per image, with any checkpoint (`load_method`) or latent optimisation (`method=optim_*`;
with `method.noise=optimize` also `noise.pt`, the fitted noise maps); `refine=idinvert` adds In-Domain
inversion's regularised optimisation from those codes."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganinv.configs import CONF


def inverter(cfg):
    """The InversionModule the config asks for (checkpoint, or an optimiser over the configured generator)."""
    from hydra.utils import instantiate

    from ganinv.checkpoints import CheckpointError
    from ganinv.methods import load_method, method_from_config

    if (cfg.checkpoint is None) == (cfg.get("method") is None):
        raise CheckpointError(None, "give either checkpoint=<file> or method=optim_w|optim_wplus (with generator=).")
    if cfg.checkpoint is not None:
        return load_method(cfg.checkpoint, instantiate(cfg.generator) if cfg.use_generator else None)
    return method_from_config(cfg.method, instantiate(cfg.generator), cfg.loss).eval()


def refiner_for(cfg, module):
    """The In-Domain module whose regularised optimisation refines the codes (`refine=idinvert`), or None."""
    from ganinv.checkpoints import CheckpointError
    from ganinv.methods import IDInvertModule, load_method

    if cfg.refine not in (None, "idinvert"):
        raise CheckpointError(None, f"refine={cfg.refine!r} is not one of null, idinvert.")
    if cfg.refine is None:
        return None
    refiner = load_method(cfg.refine_checkpoint) if cfg.refine_checkpoint else module
    if not isinstance(refiner, IDInvertModule):
        raise CheckpointError(cfg.refine_checkpoint or cfg.checkpoint, "is not an In-Domain inversion "
                              "checkpoint.", "Set refine_checkpoint= to an IDInvert run's .ckpt.")
    if refiner.hparams["generator_hash"] != module.hparams["generator_hash"]:
        raise CheckpointError(cfg.refine_checkpoint, "was trained against another generator than the codes' "
                              "method.", "Refine with an In-Domain run on the same generator.")
    options = {k: v for k, v in (cfg.get("refine_options") or {}).items() if v is not None}
    if unknown := sorted(set(options) - set(refiner.refine)):
        raise CheckpointError(None, f"refine_options has no {', '.join(unknown)}.",
                              f"Set any of {', '.join(sorted(refiner.refine))} (the run's: {refiner.refine}).")
    refiner.refine = {**refiner.refine, **options}
    return refiner


def record_name(module, refiner) -> str:
    """The default name of a record: the method and what changes it, plus the refiner and its options."""
    return module.label() + (f" + {refiner.refine_label()}" if refiner is not None else "")


def inverse(module, refiner):
    """images -> codes: the module's inversion, then the refiner's regularised optimisation when there is one."""
    def run(x: torch.Tensor) -> torch.Tensor:
        codes = module.invert(x)
        return codes if refiner is None else refiner.optimize_latent(x, init=codes)

    return run


def job_of(cfg, *skip: str) -> dict:
    """What a run's saved pieces (`ganinv.checkpoints.pieces`) were computed from: its resolved configuration but
    `skip`, and the size and modification time of its checkpoint files (a retrained file is another job)."""
    from omegaconf import OmegaConf

    files = [cfg.get(k) for k in ("checkpoint", "refine_checkpoint") if cfg.get(k)]
    stamps = {str(f): (os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files if os.path.exists(f)}
    config = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in skip}
    return {"config": config, "files": stamps}


def invert(cfg) -> Path:
    from rich.progress import Progress
    from torchvision.utils import save_image

    from ganinv.checkpoints import atomic_save, atomic_write
    from ganinv.checkpoints.pieces import Pieces
    from ganinv.data import ImageFolderDataset
    from ganinv.data.transforms import load_image

    module = inverter(cfg)
    refiner = refiner_for(cfg, module)
    # Unreadable files are skipped and listed as the DataModule does (one warning; an error past the fraction).
    folder = ImageFolderDataset(cfg.input, resolution=module.generator.size, check="full",
                                max_bad_fraction=float(cfg.max_bad_fraction), root_key="input",
                                bad_key="max_bad_fraction")
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    codes: dict[str, torch.Tensor] = {}
    noises: dict[str, list[torch.Tensor]] = {}  # fitted noise maps (method=optim_* with noise=optimize)
    fits_noise = getattr(module, "noise", "fixed") == "optimize"
    names = [p.relative_to(folder.root).as_posix() for p in folder.files]
    pieces = Pieces(out / ".partial", {**job_of(cfg), "images": names})  # a killed run redoes only its last batch
    with Progress() as bar:
        task = bar.add_task("inverting", total=len(names))
        for start in range(0, len(names), int(cfg.batch_size)):
            idx = list(range(start, min(start + int(cfg.batch_size), len(names))))
            done = pieces.get(f"{start:09d}")
            if done is not None:
                codes.update(done["codes"])
                noises.update(done["noise"])
                bar.advance(task, len(idx))
                continue
            x = torch.stack([load_image(folder.files[i], folder.resolution, folder.crop) for i in idx])
            w, noise = module.fit(x) if fits_noise else (module.invert(x), None)
            if refiner is not None:
                w = refiner.optimize_latent(x, init=w)
            with torch.no_grad():
                rec = module.reconstruct(w, noise).clamp(-1, 1) * 0.5 + 0.5
            for k, i in enumerate(idx):
                codes[names[i]] = w[k].cpu()
                if noise is not None:
                    noises[names[i]] = [n[k : k + 1].cpu() for n in noise]
                target = out / Path(names[i]).with_suffix(".png")
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, lambda f, img=rec[k]: save_image(img, f, format="png"))
            pieces.put(f"{start:09d}", {"codes": {names[i]: codes[names[i]] for i in idx},
                                        "noise": {names[i]: noises[names[i]] for i in idx if names[i] in noises}})
            bar.advance(task, len(idx))
    atomic_save(codes, out / "codes.pt")
    if noises:
        atomic_save(noises, out / "noise.pt")
    pieces.clear()
    skipped = f"; skipped {len(folder.bad)} unreadable files (listed above)" if folder.bad else ""
    print(f"wrote {len(codes)} codes to {out / 'codes.pt'} and their reconstructions{skipped}")
    return out


def main() -> None:
    import hydra

    from ganinv.cli import check_command_line, user_errors

    check_command_line("ganinv-invert", "invert")
    hydra.main(config_path=CONF, config_name="invert", version_base=None)(
        user_errors("ganinv-invert", ("input", "output"), ("output",))(invert))()


if __name__ == "__main__":
    main()
