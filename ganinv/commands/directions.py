"""`ganinv-directions`: SeFa, GANSpace or InterFaceGAN directions for the configured generator, written with their
metadata (generator hash, method, layers) to `output`."""

from __future__ import annotations

from ganinv.configs import CONF


def directions(cfg):
    from hydra.utils import instantiate

    from ganinv.editing import ganspace, interfacegan, sefa

    generator = instantiate(cfg.generator)
    if cfg.kind == "sefa":
        found = sefa(generator, None if cfg.layers is None else list(cfg.layers))
    elif cfg.kind == "ganspace":
        found = ganspace(generator, int(cfg.n_samples), int(cfg.seed), int(cfg.n_components))
    elif cfg.kind == "interfacegan":
        if not cfg.attribute:
            raise SystemExit("ganinv-directions: error: kind=interfacegan needs attribute=<name> (or a list, "
                             "attribute=[smile,age], with a predictor returning one column each).")
        from omegaconf import ListConfig

        names = list(cfg.attribute) if isinstance(cfg.attribute, ListConfig) else str(cfg.attribute)
        found = interfacegan(generator, instantiate(cfg.predictor).eval(), names,
                             min(int(cfg.n_samples), 10_000), float(cfg.ratio), int(cfg.seed))
    else:
        raise SystemExit(f"ganinv-directions: error: kind={cfg.kind!r} is not one of sefa, ganspace, "
                         "interfacegan.")
    path = found.save(cfg.output)
    print(f"wrote {path}: {len(found.names)} {found.method} direction(s) in W ({generator.style_dim}-d)"
          + (f", layers {found.layers}" if found.layers else ""))
    return path


def main() -> None:
    import hydra

    from ganinv.workflows.command_line import user_errors

    hydra.main(config_path=CONF, config_name="directions", version_base=None)(
        user_errors("ganinv-directions")(directions))()


if __name__ == "__main__":
    main()
