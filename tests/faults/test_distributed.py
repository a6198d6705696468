"""A distributed search over 127.0.0.1 whose worker is killed mid-trial still completes."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("driver", Path(__file__).with_name("driver.py"))
driver = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(driver)

CONFIG = driver.run_config(epochs=[2, 3])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(workdir: Path, name: str, args: list[str], kill_at: str | None = None):
    log = open(workdir / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115 (closed by the OS)
    return subprocess.Popen(driver.command(workdir, args, kill_at), stdout=log,
                            stderr=subprocess.STDOUT, env=driver.env(), cwd=workdir)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_distributed(workdir: Path, *, kill_worker: bool, timeout_s: float = 8.0) -> dict:
    """Chief + the victim worker (killed at its first epoch end when asked) + one more."""
    (workdir / "run.yaml").write_text(CONFIG, encoding="utf-8")
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--config", str(workdir / "run.yaml"), "--output", str(workdir / "out")]
    chief = start(workdir, "chief", ["run", *common, "--serve", address,
                                     "--trial-timeout", str(timeout_s)])
    processes = [chief]
    try:
        wait_for(lambda: listening(port), 120, "the chief to listen")
        victim = start(workdir, "w1", ["worker", *common, "--chief", address, "--id", "w1",
                                       "--heartbeat", "1"],
                       kill_at="epoch:1" if kill_worker else None)
        processes.append(victim)
        wait_for(lambda: "asking" in (workdir / "w1.log").read_text(encoding="utf-8"), 120,
                 "the first worker to ask for trials")
        other = start(workdir, "w0", ["worker", *common, "--chief", address, "--id", "w0",
                                      "--heartbeat", "1"])
        processes.append(other)
        chief.wait(timeout=300)
        victim.wait(timeout=60)
        other.wait(timeout=60)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return {"chief": chief.returncode, "w1": victim.returncode, "w0": other.returncode}


@pytest.mark.slow
def test_worker_killed_mid_trial_has_its_trial_handed_out_again(tmp_path):
    codes = run_distributed(tmp_path, kill_worker=True)
    logs = {name: (tmp_path / f"{name}.log").read_text(encoding="utf-8")
            for name in ("chief", "w0", "w1")}
    assert codes == {"chief": 0, "w1": -signal.SIGKILL, "w0": 0}, logs
    assert "worker 'w1' silent for" in logs["chief"]
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    trials = report["trials"]
    assert [t["status"] for t in trials] == ["COMPLETED"] * 4
    assert report["search"]["trials_total"] == 4
    distributed = report["search"]["distributed"]
    assert [r["tuner_id"] for r in distributed["reassigned"]] == ["w1"]
    assert distributed["workers"] == ["w0", "w1"]
    reassigned = distributed["reassigned"][0]["trial_id"]
    assert reassigned in {t["trial_id"] for t in trials}
    # Every trial completed exactly once (the killed worker completed none).
    ledger = (tmp_path / "ledger").read_text(encoding="utf-8").split("\n")
    completed = sorted(line.split()[0] for line in ledger if line)
    assert completed == sorted(t["trial_id"] for t in trials)
    assert (tmp_path / "out" / "models" / "best_float32.tflite").stat().st_size > 0
