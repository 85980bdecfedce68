"""optuna-dashboard on a sweep's journal study, looked at in a headless browser: the page lists the trials and
draws the Pareto front of a two-objective study (the documented command, docs/scaling.md#optuna-sweeps)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="the extra ganinv[sweeps]")
pytest.importorskip("optuna_dashboard", reason="the extra ganinv[sweeps]")
pytestmark = pytest.mark.slow
BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(BROWSER is None, reason="no headless browser here (apt-get install chromium)")
def test_the_dashboard_shows_a_sweeps_trials_and_front(tmp_path):
    from optuna.distributions import FloatDistribution

    from ganinv.sweeps.study import open_storage, open_study

    storage = open_storage(None, tmp_path)
    study = open_study(str(tmp_path), storage, None, None, ["mse", "lec"], None)
    for mse, lec in [(0.010, 30.0), (0.020, 20.0), (0.030, 10.0), (0.030, 30.0)]:  # three on the front
        trial = study.ask({"loss.weights.id": FloatDistribution(0.0, 0.5)})
        study.tell(trial, [mse, lec])
    port = free_port()
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    server = subprocess.Popen([str(dashboard), str(tmp_path / "study.log"), "--port", str(port), "--host",
                               "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        url = f"http://127.0.0.1:{port}/dashboard/studies/{storage.get_study_id_from_name(str(tmp_path))}"
        browse = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000"]
        page, trials = (subprocess.run([*browse, "--dump-dom", u], capture_output=True, text=True,
                                       timeout=120).stdout for u in (url, f"{url}/trials"))
        subprocess.run([*browse, "--window-size=1400,1000", f"--screenshot={tmp_path / 'dashboard.png'}", url],
                       capture_output=True, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Pareto Front" in page and ">mse<" in page and ">lec<" in page, page[-3000:]  # objectives by name
    assert all(f"Trial {n}" in page for n in (0, 1, 2)) and "Trial 3" not in page  # the best trials: the front
    assert all(f"Trial {n}" in trials for n in range(4)) and "loss.weights.id" in trials  # every trial
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000
