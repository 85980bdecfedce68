"""`ganinv-leaderboard`: records -> a ranked Rich table with Pareto flags, and Markdown, CSV, PNG and HTML files
(conf/leaderboard.yaml; `ganinv.workflows.leaderboard`)."""

from __future__ import annotations

import sys

from ganinv.configs import CONF


def main() -> None:
    import hydra

    from ganinv.workflows.command_line import check_command_line, user_errors
    from ganinv.workflows.leaderboard import leaderboard

    # fail_on=mse:+2%,lec:+5% is one option (never a sweep): quoted for Hydra, as the shell took the quotes off
    sys.argv = [f"fail_on='{a[8:]}'" if a.startswith("fail_on=") and "," in a and a[8:9] not in "'\"[" else a
                for a in sys.argv]
    check_command_line("ganinv-leaderboard", "leaderboard")

    def task(cfg):  # defined here: Hydra names the job (and its .log file) after this module
        from ganinv.metrics.snapshots import Regressions

        try:
            return leaderboard(cfg)
        except Regressions as e:  # the gate of fail_on=: exit code 1, the rows that regressed
            print(f"ganinv-leaderboard: regressed against the baseline:\n{e}", file=sys.stderr)
            sys.exit(1)

    hydra.main(config_path=CONF, config_name="leaderboard", version_base=None)(
        user_errors("ganinv-leaderboard", ("input",), ("output", "save"))(task))()


if __name__ == "__main__":
    main()
