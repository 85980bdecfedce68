"""`ganinv-train`: train an inversion method (conf/train.yaml; `experiment=toy_<method>` recipes; what it writes:
`ganinv.workflows.training`). Returns the run's objective to a Hydra sweeper."""

from __future__ import annotations

import sys

from ganinv.configs import CONF


def main() -> None:
    import hydra

    from ganinv.workflows.checks import job_problems
    from ganinv.workflows.command_line import check_command_line, user_errors

    # A multirun's jobs are checked here, before any is submitted, and named after the keys that vary.
    sys.argv += check_command_line("ganinv-train", "train", writable=("run_dir",), check=job_problems)

    def task(cfg) -> float | None:
        from ganinv.workflows.training import objective, train

        return objective(cfg, train(cfg))

    hydra.main(config_path=CONF, config_name="train", version_base=None)(
        user_errors("ganinv-train", writable=("run_dir",), run_dir="run_dir")(task))()


if __name__ == "__main__":
    main()
