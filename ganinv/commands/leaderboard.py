"""`ganinv-leaderboard`: records -> a ranked Rich table with Pareto flags, and Markdown, CSV, PNG and HTML files
(conf/leaderboard.yaml; `ganinv.workflows.leaderboard`)."""

from __future__ import annotations

from ganinv.configs import CONF


def main() -> None:
    import hydra

    from ganinv.workflows.command_line import check_command_line, user_errors
    from ganinv.workflows.leaderboard import leaderboard

    check_command_line("ganinv-leaderboard", "leaderboard")

    def task(cfg):  # defined here: Hydra names the job (and its .log file) after this module
        return leaderboard(cfg)

    hydra.main(config_path=CONF, config_name="leaderboard", version_base=None)(
        user_errors("ganinv-leaderboard", ("input",), ("output",))(task))()


if __name__ == "__main__":
    main()
