"""What `ganinv-edit` runs: invert images, move their codes along named directions at given strengths, and write one
image grid; or interpolate between two images' codes (conf/edit.yaml)."""

from __future__ import annotations

from pathlib import Path

import torch


def edit_grid(cfg) -> tuple[Path, str]:
    """The grid `ganinv-edit` writes (an interpolation row, or each image's edits), and a line saying what it holds."""
    from ganinv.checkpoints import atomic_write
    from ganinv.data.transforms import resize
    from ganinv.editing.grid import labelled_grid
    from ganinv.workflows.inverter import build_inverter

    invert = build_inverter(cfg, show=True)

    def show(inv) -> torch.Tensor:
        with torch.no_grad():
            return resize(invert.module.reconstruct(inv).clamp(-1, 1), invert.generator.size)

    tiles, columns, rows, what = (interpolation(cfg, invert, show) if cfg.interpolate else edits(cfg, invert, show))
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = labelled_grid(tiles, columns, rows)
    atomic_write(out, lambda f: grid.save(f, format="png"))
    message = f"wrote {out}: {what}"
    if cfg.save_images and not cfg.interpolate:
        message += (f"\nwrote each image's reconstruction and edits to {cfg.save_images}/"
                    "<reconstruction | edit_strength>/")
    return out, message


def interpolation(cfg, invert, show):
    """Image a, `steps` images of codes from a's to b's, image b: (tiles, column labels, row labels, description)."""
    from ganinv.data import DataError
    from ganinv.data.datasets import check_image
    from ganinv.data.photos import aligned_copies
    from ganinv.data.transforms import load_image
    from ganinv.editing import interpolate
    from ganinv.errors import OptionError

    if len(cfg.interpolate) != 2:
        raise OptionError(f"interpolate= takes two images, got {len(cfg.interpolate)}.")
    for p in cfg.interpolate:
        why = check_image(Path(p), "full") if Path(p).is_file() else "no such file"
        if why:
            raise DataError(f"{p}: {why}. interpolate= takes two readable image files.")
    paths, size = [Path(p) for p in cfg.interpolate], invert.generator.size
    if cfg.align:
        copies, faceless = aligned_copies(paths, size)
        for p, why in faceless.items():
            raise DataError(f"{p}: {why}, so align=true cannot align it.")
        paths = [copies[p] for p in paths]
    x = torch.stack([load_image(p, size, "center") for p in paths])
    inv = invert(x)
    row = show(interpolate(inv[0], inv[1], int(cfg.steps)))
    ts = torch.linspace(0, 1, int(cfg.steps)).tolist()
    return (torch.cat([x[:1], row, x[1:]]), ["a", *[f"t = {t:.2g}" for t in ts], "b"],
            [f"{Path(cfg.interpolate[0]).stem} → {Path(cfg.interpolate[1]).stem}"],
            f"image a, {cfg.steps} codes from a to b, image b")


def edits(cfg, invert, show):
    """Per image of `input=`: the input, its reconstruction and one edit per strength, one row per direction
    (each image also saved under `save_images=`): (tiles, column labels, row labels, description)."""
    from ganinv.data import ImageFolderDataset
    from ganinv.data.photos import warn_if_unaligned
    from ganinv.editing import edit
    from ganinv.errors import OptionError
    from ganinv.inversion import Inversion

    if not cfg.input:
        raise OptionError("give input=<folder of images> (or interpolate=[a,b]).")
    folder = ImageFolderDataset(cfg.input, resolution=invert.generator.size, check="full", root_key="input",
                                bad_key=None, align=bool(cfg.align))
    if not cfg.align:
        warn_if_unaligned(folder.files, invert.generator.size)
    files = folder.files[: int(cfg.max_images)]
    x = torch.stack([folder.load(f) for f in files])
    directions = named_directions(cfg, invert.module.generator)
    inv, tiles, row_labels = saved(cfg, folder, files) if cfg.inverted else invert(x), [], []
    strengths = [float(s) for s in cfg.strengths]
    names = [f.relative_to(folder.root).with_suffix(".png").as_posix() for f in files]
    for i in range(len(x)):
        rec = show(inv[i])
        save_each(cfg, "reconstruction", names[i], rec[0])
        for name in cfg.edits:
            d = directions[name]
            stepped = show(Inversion.cat([edit(inv[i], d, a, directions.layers) for a in strengths]))
            tiles += [x[i : i + 1], rec, stepped]
            row_labels.append(f"{files[i].stem}: {name}")
            for a, img in zip(strengths, stepped):
                save_each(cfg, f"{name}_{a:+g}", names[i], img)
    return (torch.cat(tiles), ["input", "reconstruction", *[f"α = {a:+g}" for a in strengths]], row_labels,
            f"{len(x)} images x {', '.join(cfg.edits)}; columns: input, reconstruction, strengths "
            f"{list(cfg.strengths)}")


def named_directions(cfg, generator):
    """The directions of `directions=` (a file), or of the toy attributes, holding every name of `edits=`."""
    from ganinv.checkpoints import CheckpointError
    from ganinv.editing import load_directions
    from ganinv.errors import OptionError
    from ganinv.metrics.suite import toy_directions

    if cfg.directions:
        directions = load_directions(cfg.directions, generator)
    else:
        try:
            directions = toy_directions(generator, list(cfg.edits))
        except ValueError as err:  # a name the toy attribute net does not know
            raise OptionError(f"{err}. Set edits= to toy attributes, or directions= to a file.") from None
    if missing := [n for n in cfg.edits if n not in directions.names]:
        raise CheckpointError(cfg.directions, f"has no direction {missing[0]!r}; it has "
                              f"{', '.join(directions.names[:12])}.", "Set edits= to some of those names.")
    return directions


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
