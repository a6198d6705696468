"""kill -9 at every kind of write, then the same command: nothing lost, nothing run twice."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("driver", Path(__file__).with_name("driver.py"))
driver = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(driver)

SINGLE = driver.run_config()
MULTI = driver.run_config(
    tuner=None, refit=None, trials=3, objectives=["val_accuracy", "gzip_bytes"], oracle="random",
    compression_space={"sparsities": [0.0, 0.5], "clusters": [0],
                       "quantization": ["float32", "dynamic"], "prune_epochs": 1},
)


def run_driver(workdir: Path, config: str, kill_at: str | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the CLI through the fault driver; the same output folder every time."""
    (workdir / "run.yaml").write_text(config, encoding="utf-8")
    args = ["run", "--config", str(workdir / "run.yaml"), "--output", str(workdir / "out")]
    return subprocess.run(driver.command(workdir, args, kill_at), capture_output=True, text=True,
                          timeout=timeout, env=driver.env(), cwd=workdir)


def completed_trials(out: Path) -> dict[str, dict]:
    """Trial id -> score, last metric values, hyperparameters of each COMPLETED trial file."""
    done = {}
    for path in sorted((out / "search").glob("trial_*/trial.json")):
        trial = json.loads(path.read_text(encoding="utf-8"))
        if trial["status"] == "COMPLETED":
            metrics = {name: history["observations"][-1]["value"][0]
                       for name, history in trial["metrics"]["metrics"].items()}
            done[trial["trial_id"]] = {"score": trial["score"], "metrics": metrics,
                                       "values": trial["hyperparameters"]["values"]}
    return done


def check_folder(out: Path) -> None:
    """No temporary file is left, and every JSON file parses."""
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") and ".tmp" in p.name]
    assert leftovers == []
    for path in out.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


def ledger_counts(workdir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    path = workdir / "ledger"
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        trial_id = line.split()[0]
        counts[trial_id] = counts.get(trial_id, 0) + 1
    return counts


@pytest.mark.slow
@pytest.mark.parametrize(("config", "kill_at", "trials"), [
    pytest.param(SINGLE, "epoch:3", 4, id="mid-trial"),
    pytest.param(SINGLE, "replace:oracle.json:4", 4, id="oracle-state-write"),
    pytest.param(SINGLE, "replace:trial.json:6", 4, id="trial-state-write"),
    pytest.param(SINGLE, "replace:best_float32.tflite:1", 4, id="export"),
    pytest.param(SINGLE, "replace:report.md:1", 4, id="report"),
    pytest.param(MULTI, "replace:model.tflite:2", 3, id="multi-objective-trial-export"),
])
def test_kill_then_resume_loses_and_repeats_nothing(tmp_path, config, kill_at, trials):
    killed = run_driver(tmp_path, config, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    before = completed_trials(tmp_path / "out")

    resumed = run_driver(tmp_path, config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming with" in resumed.stdout
    out = tmp_path / "out"
    check_folder(out)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    ids = [t["trial_id"] for t in report["trials"]]
    assert len(ids) == len(set(ids)) == trials
    assert report["search"]["trials_total"] == trials
    assert all(t["status"] == "COMPLETED" for t in report["trials"])
    # 0 completed trials lost: each one completed before the kill is there, unchanged.
    after = {t["trial_id"]: t for t in report["trials"]}
    for trial_id, trial in before.items():
        if "pareto" in report:  # the score is keras-tuner's sum; compare the measured metrics
            assert after[trial_id]["metrics"]["gzip_bytes"] == trial["metrics"]["gzip_bytes"]
            assert after[trial_id]["score"] == pytest.approx(trial["metrics"]["val_accuracy"])
        else:
            assert after[trial_id]["score"] == pytest.approx(trial["score"])
        assert after[trial_id]["hyperparameters"] == trial["values"]
    # 0 trials run twice: every trial completed exactly once over both processes.
    assert ledger_counts(tmp_path) == {trial_id: 1 for trial_id in ids}
    assert report["search"]["trials_run_now"] == trials - len(before)
    for row in report["models"]:
        assert (out / row["path"]).stat().st_size > 0
