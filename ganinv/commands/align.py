"""`ganinv-align`: photos -> FFHQ-aligned crops and alignment.json; with `unalign=true`, edited crops -> the photos
with them pasted back (conf/align.yaml, docs/photos.md)."""

from __future__ import annotations

from pathlib import Path

from ganinv.configs import CONF


def _listed(skipped: dict[str, str], where: Path) -> None:
    if skipped:
        print(f"skipped {len(skipped)} file(s) of {where}:")
        for name, why in skipped.items():
            print(f"  {name}: {why}")


def run(cfg) -> Path:
    from ganinv.data.photos import align_folder, unalign_folder
    from ganinv.workflows.command_line import OptionError

    out = Path(str(cfg.output))
    inside = out.resolve().is_relative_to(Path(str(cfg.input)).resolve())
    if inside and not cfg.unalign:
        raise OptionError(f"output={cfg.output} is input= or a folder inside it: the crops would overwrite the "
                          "photos or be read as photos next time. Choose an output folder outside input=.")
    if cfg.unalign:
        if not cfg.alignment:
            raise OptionError("unalign=true needs alignment=<the ganinv-align output folder the crops came from>.")
        written, skipped = unalign_folder(cfg.input, cfg.alignment, out, cfg.photos, float(cfg.feather))
        print(f"wrote {len(written)} photo(s) with their crops pasted back to {out}")
    else:
        crops, skipped = align_folder(cfg.input, out, int(cfg.size), str(cfg.face), cfg.landmarks,
                                      float(cfg.min_score), int(cfg.workers))
        photos = len({a.photo for a in crops.values()})
        print(f"wrote {len(crops)} crop(s) of {photos} photo(s) ({cfg.size} px) and alignment.json to {out}")
    _listed(skipped, Path(str(cfg.input)))
    return out


def main() -> None:
    import hydra

    from ganinv.workflows.command_line import check_command_line, user_errors

    check_command_line("ganinv-align", "align")
    hydra.main(config_path=CONF, config_name="align", version_base=None)(
        user_errors("ganinv-align", ("input", "output"), ("output",))(run))()


if __name__ == "__main__":
    main()
