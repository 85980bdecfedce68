"""`Inverter`: a method followed by a refiner, as a command's config asks for it (`build_inverter`: a checkpoint
or the average code, then `refine=`), and what `ganinv-invert` runs with it: a folder of images -> `codes.pt`
({file name: W+ code [n_latent, style_dim]}), one reconstruction PNG per image and, where the inversion holds more
than codes (fitted noise, PTI's or HyperStyle's per-image weight offsets, HFGI's residual),
`inversions/<file name>.pt` with all of it (`load_inversions`)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganinv.inversion import Inversion


class Inverter:
    """What evaluation, folder inversion and editing invert with: a method's inversion (`module`, an
    InversionModule), followed by a refiner's where there is one (`refiner`: W / W+ optimisation, In-Domain's,
    PTI). `inverter(x)` inverts; `codes(x)` only as far as the codes depend on the refiner (all LEC needs: PTI's
    tuning, for one, never moves them); `reconstruct` is the module's; `name()` the record's default name."""

    def __init__(self, module, refiner=None):
        self.module, self.refiner = module, refiner
        self.generator = module.generator

    def __call__(self, x: torch.Tensor) -> Inversion:
        inv = self.module.invert(x)
        return inv if self.refiner is None else self.refiner(inv, x)

    def codes(self, x: torch.Tensor) -> Inversion:
        inv = self.module.invert(x)
        return inv if self.refiner is None else self.refiner.codes(inv, x)

    def reconstruct(self, inv: Inversion) -> torch.Tensor:
        return self.module.reconstruct(inv)

    def to(self, device: torch.device | str) -> Inverter:
        self.module = self.module.to(device)
        self.refiner = self.refiner.to(device) if self.refiner is not None else None
        return self

    def name(self) -> str:
        """The method and what changes it, plus the refiner and its options (e.g. "In-Domain encoder + In-Domain
        optimiser without regulariser")."""
        from ganinv.methods import AverageCode

        if self.refiner is None:
            return self.module.label()
        if isinstance(self.module, AverageCode):
            return self.refiner.label()
        return f"{self.module.label()} + {self.refiner.label()}"


def build_inverter(cfg, show: bool = False) -> Inverter:
    """The inverter of a command's config: `checkpoint=` (ours or official, `load_method`) or, without one, the
    average code of `generator=` (where a refiner starts, and what renders saved inversions that need no method's
    own nets), followed by the refiner of `refine=` (`configured_refiner`)."""
    from hydra.utils import instantiate

    from ganinv.errors import OptionError
    from ganinv.methods import AverageCode, load_method

    if cfg.checkpoint is not None:
        module = load_method(cfg.checkpoint, instantiate(cfg.generator) if cfg.use_generator else None,
                             base=cfg.get("base"))
    elif cfg.get("refine") is None and not cfg.get("inverted"):  # ganinv-edit inverted=: saved inversions
        raise OptionError("give checkpoint=<file>, or refine=optim_w|optim_wplus|pti (optimisation from the average "
                          "code of generator=).")
    else:
        module = AverageCode(instantiate(cfg.generator)).eval()
    return Inverter(module, configured_refiner(cfg, module, show))


def configured_refiner(cfg, module, show: bool = False):
    """The refiner of `refine=` (None without) for `module`'s inversions, under the `loss` group's perceptual
    net."""
    from ganinv.errors import ConfigError
    from ganinv.methods import AverageCode, build_loss_nets
    from ganinv.refine import PivotalTuning, build_refiner

    if cfg.get("refine") is None:
        return None
    refiner = build_refiner(cfg.refine, module, build_loss_nets(cfg.get("loss")).get("perceptual"), show)
    if isinstance(module, AverageCode) and isinstance(refiner, PivotalTuning) and not refiner.options["pivot"]:
        raise ConfigError("refine=pti without checkpoint= tunes around the average code: set refine.pivot=w (the "
                          "paper's W pivot) or w+, or give checkpoint= (e.g. an e4e run) for the pivot")
    return refiner


def load_inversions(folder: str | os.PathLike) -> dict[str, Inversion]:
    """{file name: Inversion of that one image} from a `ganinv-invert` output folder: its `inversions/*.pt` where
    it wrote them, else its `codes.pt` (and `noise.pt` of earlier versions)."""
    from ganinv.checkpoints import CheckpointError, load_torch_file

    out = Path(folder)
    codes = load_torch_file(out / "codes.pt") if (out / "codes.pt").exists() else None
    if codes is None:
        raise CheckpointError(out, "holds no codes.pt.", "Pass a ganinv-invert output folder.")
    noise = load_torch_file(out / "noise.pt") if (out / "noise.pt").exists() else {}
    found = {}
    for name, code in codes.items():
        state = out / "inversions" / f"{name}.pt"
        if state.exists():
            found[name] = Inversion.from_state(load_torch_file(state))
        else:
            found[name] = Inversion(code[None], noise.get(name))
    return found


def job_of(cfg, *skip: str) -> dict:
    """What a run's saved pieces (`ganinv.checkpoints.pieces`) were computed from: its resolved configuration but
    `skip`, and the size and modification time of its checkpoint files (a retrained file is another job)."""
    from omegaconf import OmegaConf

    files = [f for f in (cfg.get("checkpoint"), (cfg.get("refine") or {}).get("checkpoint")) if f]
    stamps = {str(f): (os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files if os.path.exists(f)}
    config = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in skip}
    return {"config": config, "files": stamps}


def invert_folder(cfg) -> tuple[Path, str]:
    """`ganinv-invert`: every image of `cfg.input` inverted into `cfg.output`; (the output folder, a line saying
    what was written)."""
    from rich.progress import Progress
    from torchvision.utils import save_image

    from ganinv.checkpoints import atomic_save, atomic_write
    from ganinv.checkpoints.pieces import Pieces
    from ganinv.data import ImageFolderDataset
    from ganinv.data.photos import warn_if_unaligned
    from ganinv.metrics import invert_batches

    inverter = build_inverter(cfg)
    # Unreadable files are skipped and listed as the DataModule does (one warning; an error past the fraction).
    folder = ImageFolderDataset(cfg.input, resolution=inverter.generator.size, check="full",
                                max_bad_fraction=float(cfg.max_bad_fraction), root_key="input",
                                bad_key="max_bad_fraction", align=bool(cfg.align))
    if not cfg.align:
        warn_if_unaligned(folder.files, inverter.generator.size)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    codes: dict[str, torch.Tensor] = {}
    names = [p.relative_to(folder.root).as_posix() for p in folder.files]
    pieces = Pieces(out / ".partial", {**job_of(cfg), "images": names})  # a killed run redoes only its last batch
    per_image = 0

    def load(start: int, stop: int) -> torch.Tensor:
        return torch.stack([folder.load(f) for f in folder.files[start:stop]])

    with Progress() as bar:
        task = bar.add_task("inverting", total=len(names))
        for part in invert_batches(inverter, inverter.reconstruct, load, len(names), int(cfg.batch_size), share=False,
                                   pieces=pieces):
            inv, rec = part.inversion, part.recs * 0.5 + 0.5
            for k, name in enumerate(names[part.start:part.start + len(rec)]):
                target = out / Path(name).with_suffix(".png")
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, lambda f, img=rec[k]: save_image(img, f, format="png"))
                if inv.refined:  # what editing this image needs beyond its code
                    atomic_save(inv[k].cpu().state(), out / "inversions" / f"{name}.pt")
                codes[name] = inv.codes[k].cpu()
            per_image = max(per_image, inv.storage_bytes())
            bar.advance(task, len(rec))
    atomic_save(codes, out / "codes.pt")
    pieces.clear()
    skipped = f"; skipped {len(folder.bad)} unreadable files (listed above)" if folder.bad else ""
    state = f", and each image's inversion in {out / 'inversions'} ({per_image / 1e6:.2f} MB per image)" if (
        out / "inversions").exists() else ""
    return out, f"wrote {len(codes)} codes to {out / 'codes.pt'}, their reconstructions{state}{skipped}"
