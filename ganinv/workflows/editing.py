"""What `ganinv-edit` runs: invert images, move their codes along named directions at given strengths, and write one
image grid; or interpolate between two images' codes (conf/edit.yaml)."""

from __future__ import annotations

from pathlib import Path

import torch


def edit_grid(cfg) -> Path:
    from ganinv.checkpoints import CheckpointError, atomic_write
    from ganinv.data import DataError, ImageFolderDataset
    from ganinv.data.datasets import check_image
    from ganinv.data.photos import aligned_copies, warn_if_unaligned
    from ganinv.data.transforms import load_image, resize
    from ganinv.editing import edit, interpolate, load_directions
    from ganinv.editing.grid import labelled_grid
    from ganinv.errors import OptionError
    from ganinv.inversion import Inversion
    from ganinv.metrics.suite import toy_directions
    from ganinv.workflows.inverter import build_inverter

    invert = build_inverter(cfg, show=True)
    module, size = invert.module, invert.generator.size

    def show(inv: Inversion) -> torch.Tensor:
        with torch.no_grad():
            return resize(module.reconstruct(inv).clamp(-1, 1), size)

    if cfg.interpolate:
        if len(cfg.interpolate) != 2:
            raise OptionError(f"interpolate= takes two images, got {len(cfg.interpolate)}.")
        for p in cfg.interpolate:
            why = check_image(Path(p), "full") if Path(p).is_file() else "no such file"
            if why:
                raise DataError(f"{p}: {why}. interpolate= takes two readable image files.")
        paths = [Path(p) for p in cfg.interpolate]
        if cfg.align:
            copies, faceless = aligned_copies(paths, size)
            for p, why in faceless.items():
                raise DataError(f"{p}: {why}, so align=true cannot align it.")
            paths = [copies[p] for p in paths]
        x = torch.stack([load_image(p, size, "center") for p in paths])
        inv = invert(x)
        row = show(interpolate(inv[0], inv[1], int(cfg.steps)))
        ts = torch.linspace(0, 1, int(cfg.steps)).tolist()
        tiles, columns = torch.cat([x[:1], row, x[1:]]), ["a", *[f"t = {t:.2g}" for t in ts], "b"]
        row_labels = [f"{Path(cfg.interpolate[0]).stem} → {Path(cfg.interpolate[1]).stem}"]
    else:
        if not cfg.input:
            raise OptionError("give input=<folder of images> (or interpolate=[a,b]).")
        folder = ImageFolderDataset(cfg.input, resolution=size, check="full", root_key="input", bad_key=None,
                                    align=bool(cfg.align))
        if not cfg.align:
            warn_if_unaligned(folder.files, size)
        files = folder.files[: int(cfg.max_images)]
        x = torch.stack([folder.load(f) for f in files])
        if cfg.directions:
            directions = load_directions(cfg.directions, module.generator)
        else:
            try:
                directions = toy_directions(module.generator, list(cfg.edits))
            except ValueError as err:  # a name the toy attribute net does not know
                raise OptionError(f"{err}. Set edits= to toy attributes, or directions= to a file.") from None
        missing = [n for n in cfg.edits if n not in directions.names]
        if missing:
            raise CheckpointError(cfg.directions, f"has no direction {missing[0]!r}; it has "
                                  f"{', '.join(directions.names[:12])}.", "Set edits= to some of those names.")
        inv, rows, row_labels = saved(cfg, folder, files) if cfg.inverted else invert(x), [], []
        strengths = [float(s) for s in cfg.strengths]
        names = [f.relative_to(folder.root).with_suffix(".png").as_posix() for f in files]
        for i in range(len(x)):
            rec = show(inv[i])
            save_each(cfg, "reconstruction", names[i], rec[0])
            for name in cfg.edits:
                d = directions[name]
                stepped = show(Inversion.cat([edit(inv[i], d, a, directions.layers) for a in strengths]))
                rows += [x[i : i + 1], rec, stepped]
                row_labels.append(f"{files[i].stem}: {name}")
                for a, img in zip(strengths, stepped):
                    save_each(cfg, f"{name}_{a:+g}", names[i], img)
        tiles, columns = torch.cat(rows), ["input", "reconstruction", *[f"α = {a:+g}" for a in strengths]]
    grid = labelled_grid(tiles, columns, row_labels)
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: grid.save(f, format="png"))
    what = (f"image a, {cfg.steps} codes from a to b, image b" if cfg.interpolate else
            f"{len(x)} images x {', '.join(cfg.edits)}; columns: input, reconstruction, strengths "
            f"{list(cfg.strengths)}")
    print(f"wrote {out}: {what}")
    if cfg.save_images and not cfg.interpolate:
        print(f"wrote each image's reconstruction and edits to {cfg.save_images}/<reconstruction | edit_strength>/")
    return out


def save_each(cfg, kind: str, name: str, image: torch.Tensor) -> None:
    """One edited (or reconstructed) image as `<save_images>/<kind>/<name>`, where `save_images` is set."""
    from torchvision.utils import save_image

    from ganinv.checkpoints import atomic_write

    if cfg.save_images:
        target = Path(cfg.save_images) / kind / name
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda f: save_image(image * 0.5 + 0.5, f, format="png"))


def saved(cfg, folder, files):
    """The inversions `ganinv-invert` saved in `cfg.inverted` for `files` (the images of `input=`)."""
    from ganinv.checkpoints import CheckpointError
    from ganinv.inversion import Inversion
    from ganinv.workflows.inverter import load_inversions

    found = load_inversions(cfg.inverted)
    names = [f.relative_to(folder.root).as_posix() for f in files]
    if missing := [n for n in names if n not in found]:
        raise CheckpointError(cfg.inverted, f"holds no inversion of {missing[0]} (of input={cfg.input}).",
                              "Run ganinv-invert on the same input folder, or leave inverted= unset.")
    return Inversion.cat([found[n] for n in names])
