"""`ganinv-train-invertibility`: SAM's invertibility predictor for a method's inversions (conf/train_invertibility.yaml;
`ganinv.workflows.invertibility`), the file `refine=sam` reads (`refine.predictor=`)."""

from __future__ import annotations

from ganinv.configs import CONF


def main() -> None:
    import hydra

    from ganinv.workflows.command_line import check_command_line, user_errors

    check_command_line("ganinv-train-invertibility", "train_invertibility", ("output",))

    def task(cfg):
        from ganinv.workflows.invertibility import train_invertibility

        path, measured = train_invertibility(cfg)
        print(f"wrote {path}: held-out error-map MSE {measured['val_mse']:.3g} (untrained "
              f"{measured['untrained_val_mse']:.3g}, the constant predictor's {measured['constant_val_mse']:.3g}); "
              "mean error per space "
              + ", ".join(f"{k} {v:.3g}" for k, v in measured["mean_error"].items()))

    hydra.main(config_path=CONF, config_name="train_invertibility", version_base=None)(
        user_errors("ganinv-train-invertibility", ("checkpoint", "output"), ("output",))(task))()


if __name__ == "__main__":
    main()
