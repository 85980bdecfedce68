"""`ganinv-eval`: every metric of a checkpoint (ours or official), refined or not, or an optimiser on a data set's
held-out split -> one JSON record (conf/eval.yaml; `ganinv.workflows.evaluation`; docs/evaluation.md)."""

from __future__ import annotations

from ganinv.configs import CONF


def main() -> None:
    import hydra

    from ganinv.workflows.command_line import check_command_line, user_errors

    check_command_line("ganinv-eval", "eval")

    def task(cfg) -> None:
        from ganinv.workflows.evaluation import evaluate, summary

        path = evaluate(cfg)
        if path is not None:  # rank 0 of several processes, or the only one
            print(summary(path))

    hydra.main(config_path=CONF, config_name="eval", version_base=None)(
        user_errors("ganinv-eval", ("output",), ("output",))(task))()


if __name__ == "__main__":
    main()
