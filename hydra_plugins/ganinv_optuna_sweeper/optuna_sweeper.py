"""`OptunaSweeper`: what Hydra calls; it hands the sweep to `ganinv.sweeps.sweeper.OptunaSweep`."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper


class OptunaSweeper(Sweeper):
    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options
        self.hydra_context = self.config = self.launcher = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from omegaconf import OmegaConf

        from ganinv.sweeps.sweeper import OptunaSweep, check_options

        options = OmegaConf.create(self.options)
        check_options(options)

        def load_job(overrides: list[str]):
            return self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))

        return OptunaSweep(options, self.config, load_job, self.launcher).run(arguments)
