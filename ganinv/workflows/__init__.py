"""What the commands run, as library code: training (`training`, with the Trainer's parts in `trainer` and the
checks a job passes before any work in `checks`), evaluation (`evaluation`), the inverter of a config and folder
inversion (`inverter`), editing grids (`editing`), the leaderboard (`leaderboard`), generator training
(`generator`), and the command-line checks every command shares (`command_line`)."""
