"""`ganinv-gpu-check`: the CUDA tests and the benchmark of every method on this machine's device within a time
budget -> gpu-report.json / .md (conf/gpu_check.yaml; `ganinv.benchmarks`; docs/scaling.md#a-first-gpu)."""

from __future__ import annotations

import sys

from ganinv.configs import CONF


def main() -> None:
    import hydra

    from ganinv.workflows.command_line import check_command_line, user_errors

    check_command_line("ganinv-gpu-check", "gpu_check")

    def task(cfg) -> None:
        from ganinv.benchmarks import check_options, device_check

        check_options(cfg)
        rep = device_check(cfg.out, cfg.budget_s, cfg.size, cfg.device, cfg.tests, list(cfg.methods),
                           list(cfg.options), list(cfg.optimisers))
        print(f"ganinv-gpu-check: {rep['status']} in {rep['used_s']:.0f} s: {cfg.out}/gpu-report.md")
        if rep["status"] == "failed":
            sys.exit(1)

    hydra.main(config_path=CONF, config_name="gpu_check", version_base=None)(
        user_errors("ganinv-gpu-check", ("out",), ("out",))(task))()


if __name__ == "__main__":
    main()
