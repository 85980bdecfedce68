"""`ganinv-invert`: a folder of images -> codes, reconstructions and each image's inversion, with any checkpoint,
a refiner after it, or a refiner alone from the average code (conf/invert.yaml; `ganinv.workflows.inverter`)."""

from __future__ import annotations

from ganinv.configs import CONF


def main() -> None:
    import hydra

    from ganinv.workflows.command_line import check_command_line, user_errors

    check_command_line("ganinv-invert", "invert")
    def task(cfg) -> None:
        from ganinv.workflows.inverter import invert_folder

        print(invert_folder(cfg)[1])

    hydra.main(config_path=CONF, config_name="invert", version_base=None)(
        user_errors("ganinv-invert", ("input", "output"), ("output",))(task))()


if __name__ == "__main__":
    main()
