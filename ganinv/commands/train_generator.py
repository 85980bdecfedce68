"""`ganinv-train-generator`: train a StyleGAN2 with Lightning (conf/train_generator.yaml; the toy generator by
default; what it writes: `ganinv.workflows.generator`)."""

from __future__ import annotations

from ganinv.configs import CONF


def main() -> None:
    import hydra

    from ganinv.workflows.command_line import user_errors

    def task(cfg):  # defined here: Hydra names the job (and its .log file) after this module
        from ganinv.workflows.generator import train

        return train(cfg)

    hydra.main(config_path=CONF, config_name="train_generator", version_base=None)(
        user_errors("ganinv-train-generator")(task))()


if __name__ == "__main__":
    main()
