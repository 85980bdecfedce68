"""`ganinv-edit`: invert images, move their codes along named directions at given strengths, and write one image
grid; or interpolate between two images' codes (conf/edit.yaml; `ganinv.workflows.editing`)."""

from __future__ import annotations

from ganinv.configs import CONF


def main() -> None:
    import hydra

    from ganinv.workflows.command_line import check_command_line, user_errors

    check_command_line("ganinv-edit", "edit")

    def task(cfg):  # defined here: Hydra names the job (and its .log file) after this module
        from ganinv.workflows.editing import edit_grid

        out, message = edit_grid(cfg)
        print(message)
        return out

    hydra.main(config_path=CONF, config_name="edit", version_base=None)(
        user_errors("ganinv-edit", ("output",), ("output", "save_images"))(task))()


if __name__ == "__main__":
    main()
