"""Fault injection: kill -9 and resume, dead distributed workers, bad input.

Prints, side by side, what the package guarantees and what keras-tuner 1.4.8
alone gives (its oracle reloaded without `repair_reloaded_oracle`), and writes
``benchmarks/results/faults.json``:

* kill points tried: a process running ``keras-autoopt run`` is killed with
  SIGKILL at each kind of write (trial state, oracle state, a trial's export,
  the best model's export, the report), mid-trial, and from outside at a
  random moment of the search (0-2.5 s after its first trial file appears);
  then the same command runs again into the same folder. Counted:
  completed trials lost (completed before the kill, missing or changed after
  the resume), trials run to completion twice, runs whose report does not
  hold exactly the configured number of completed trials, temporary files
  left behind, JSON files that do not parse.
* distributed runs: a chief and two workers over 127.0.0.1; one worker is
  killed at the end of its first epoch. Counted: runs that complete with every
  trial completed once; the wall time against the same run without a kill.
* bad inputs: the table of ``tests/test_bad_input.py`` (API, CLI, YAML):
  cases tried and cases refused with a clear error before any work.
* untrusted files: a model holding a ``Lambda`` payload (it creates a marker
  file when it runs), saved as ``.h5``, ``.keras`` and SavedModel, handed to
  every entry point in a fresh process (``load_model_file``,
  ``compress_saved_model``, ``TransferHyperModel``, ``keras-autoopt compress
  --model``, ``keras-autoopt run`` / ``worker`` with the YAML ``teacher:``),
  and a pickle payload in a ``.npz``. Counted: payloads that ran; the
  baseline is ``tf_keras.models.load_model`` on the same files (what the
  package called before).
* QAT matrix: `benchmarks/_qat_matrix.py` (our HyperModels' layers and
  activations x the four QAT schemes): int8 exports passing verification.

    python benchmarks/faults.py [--external-kills 3] [--distributed-runs 2]
        [--only untrusted|qat|bad_inputs]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ROOT / "tests" / "faults"
RESULTS = ROOT / "benchmarks" / "results" / "faults.json"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, FAULTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kill = _load("test_kill_resume")
dist = _load("test_distributed")

KILL_POINTS = [
    ("mid-trial (epoch end)", kill.SINGLE, "epoch:3", 4),
    ("oracle state write", kill.SINGLE, "replace:oracle.json:4", 4),
    ("trial state write (trial start)", kill.SINGLE, "replace:trial.json:5", 4),
    ("trial state write (trial end)", kill.SINGLE, "replace:trial.json:6", 4),
    ("best model export", kill.SINGLE, "replace:best_float32.tflite:1", 4),
    ("report write", kill.SINGLE, "replace:report.md:1", 4),
    ("multi-objective trial export", kill.MULTI, "replace:model.tflite:2", 3),
]


def _run(workdir: Path, config: str, kill_at: str | None, repair: bool,
         external_after: float | None = None) -> int:
    """One driver run; with ``external_after`` it is killed from outside.

    The SIGKILL comes ``external_after`` seconds after the first trial file
    appears (a fixed delay from the start lands during TensorFlow's import).
    """
    (workdir / "run.yaml").write_text(config, encoding="utf-8")
    command = [sys.executable, str(FAULTS / "driver.py"), "--ledger", str(workdir / "ledger")]
    if kill_at:
        command += ["--kill-at", kill_at]
    if not repair:
        command.append("--no-repair")
    command += ["--", "run", "--config", str(workdir / "run.yaml"), "--output",
                str(workdir / "out")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(workdir / "log.txt", "a", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   cwd=workdir)
        if external_after is not None:
            # From outside: SIGKILL a random moment after the first trial file appears.
            search = workdir / "out" / "search"
            while process.poll() is None and not any(search.glob("trial_*/trial.json")):
                time.sleep(0.05)
            try:
                process.wait(timeout=external_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
        return process.wait(timeout=600)


def _outcome(workdir: Path, before: dict, trials: int) -> dict:
    out = workdir / "out"
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") and ".tmp" in p.name]
    broken_json = 0
    for path in out.rglob("*.json"):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            broken_json += 1
    report_path = out / "report.json"
    if not report_path.exists():
        return {"resumed_ok": False, "lost": len(before), "duplicated": 0,
                "exact_count": False, "temp_files_left": len(leftovers),
                "broken_json": broken_json}
    report = json.loads(report_path.read_text(encoding="utf-8"))
    after = {t["trial_id"]: t for t in report["trials"] if t["status"] == "COMPLETED"}
    lost = sum(1 for trial_id, trial in before.items()
               if trial_id not in after or after[trial_id]["hyperparameters"] != trial["values"])
    counts = kill.ledger_counts(workdir)
    return {"resumed_ok": True, "lost": lost,
            "duplicated": sum(n - 1 for n in counts.values() if n > 1),
            "exact_count": len(after) == trials == report["search"]["trials_total"],
            "temp_files_left": len(leftovers), "broken_json": broken_json}


def kill_and_resume(config: str, kill_at: str | None, trials: int, repair: bool,
                    external_after: float | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        first = _run(workdir, config, kill_at, repair, external_after)
        before = kill.completed_trials(workdir / "out") if (workdir / "out").exists() else {}
        resumed = _run(workdir, config, None, repair)
        result = _outcome(workdir, before, trials)
        result.update(killed=first == -signal.SIGKILL, completed_before_kill=len(before),
                      resume_exit_code=resumed)
        if resumed != 0:
            result["resumed_ok"] = False
        return result


def distributed(runs: int) -> dict:
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        baseline_dir = Path(tmp) / "baseline"
        baseline_dir.mkdir()
        codes = dist.run_distributed(baseline_dir, kill_worker=False)
        baseline_s = time.perf_counter() - start
        for index in range(runs):
            workdir = Path(tmp) / f"run{index}"
            workdir.mkdir()
            start = time.perf_counter()
            codes = dist.run_distributed(workdir, kill_worker=True)
            wall = time.perf_counter() - start
            report_path = workdir / "out" / "report.json"
            report = json.loads(report_path.read_text()) if report_path.exists() else None
            ledger = (workdir / "ledger").read_text().split()[::2] \
                if (workdir / "ledger").exists() else []
            completed = report is not None and all(
                t["status"] == "COMPLETED" for t in report["trials"]) and \
                len(report["trials"]) == 4 and sorted(ledger) == sorted(
                    t["trial_id"] for t in report["trials"])
            records.append({
                "exit_codes": codes, "completed": bool(completed), "wall_time_s": round(wall, 1),
                "reassigned": report["search"]["distributed"]["reassigned"] if report else None,
            })
    return {"runs": records, "baseline_wall_time_s": round(baseline_s, 1),
            "trial_timeout_s": 8.0, "heartbeat_s": 1.0}


def bad_inputs() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(ROOT / "tests" / "test_bad_input.py"), f"--junitxml={xml}"],
                       cwd=ROOT, capture_output=True, check=False)
        cases = [c for c in ET.parse(xml).getroot().iter("testcase")
                 if "[" in c.get("name", "")]
        failed = [c.get("name") for c in cases if list(c)]
    surfaces = {}
    for case in cases:
        surface = case.get("name").split("[", 1)[1].split("-", 1)[0]
        surfaces[surface] = surfaces.get(surface, 0) + 1
    return {"tried": len(cases), "rejected_cleanly": len(cases) - len(failed),
            "not_rejected": failed, "by_surface": surfaces}


_MAKE_EVIL = """
import sys
import keras_autoopt
from keras_autoopt._backend import keras
root, marker = sys.argv[1], sys.argv[2]
inputs = keras.Input((8, 8, 1))
x = keras.layers.Lambda(lambda t, p=marker: (__import__("pathlib").Path(p).touch(), t)[1],
                        name="lambda")(inputs)
x = keras.layers.Flatten()(x)
model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
model.save(root + "/evil.h5")
model.save(root + "/evil.keras")
model.save(root + "/evil_savedmodel", save_format="tf")
"""

_PICKLE_NPZ = """
import pathlib, sys
import numpy as np
class Payload:
    def __reduce__(self):
        return (pathlib.Path(sys.argv[2]).touch, ())
np.savez(sys.argv[1], x=np.array([Payload()] * 4, dtype=object), y=np.arange(4))
"""

_API = {
    "api load_model_file": "import keras_autoopt as ka; ka.load_model_file({path!r})",
    "api compress_saved_model": ("from keras_autoopt.pipeline import compress_saved_model; "
                                 "compress_saved_model({path!r}, {out!r})"),
    "api TransferHyperModel": "import keras_autoopt as ka; ka.TransferHyperModel({path!r}, 3)",
    "baseline tf_keras load_model": ("import keras_autoopt; from keras_autoopt._backend "
                                     "import keras; keras.models.load_model({path!r})"),
}


def untrusted_files() -> dict:
    """Hand payload files to every entry point, each in a fresh process; count the runs."""
    cli = str(Path(sys.executable).with_name("keras-autoopt"))
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        root, marker = Path(tmp), Path(tmp) / "PAYLOAD_RAN"
        subprocess.run([sys.executable, "-c", _MAKE_EVIL, tmp, str(marker)], check=True,
                       capture_output=True)
        files = {"h5": root / "evil.h5", "keras": root / "evil.keras",
                 "savedmodel": root / "evil_savedmodel"}
        for fmt, path in files.items():
            config = root / f"{fmt}.yaml"
            config.write_text("dataset: digits\nhypermodel: dense\ntrials: 1\nepochs: [1, 1]\n"
                              f"objectives: [val_accuracy, gzip_bytes]\nteacher: {path}\n")
            commands = {name: [sys.executable, "-c", code.format(path=str(path),
                                                                 out=str(root / "o"))]
                        for name, code in _API.items()
                        if not (fmt == "savedmodel" and "Transfer" in name)}
            commands["cli compress --model"] = [cli, "compress", "--model", str(path),
                                                "--output", str(root / "o")]
            commands["cli run (YAML teacher)"] = [cli, "run", "--config", str(config),
                                                  "--output", str(root / "o")]
            commands["cli worker (YAML teacher)"] = [cli, "worker", "--config", str(config),
                                                     "--output", str(root / "o"), "--chief",
                                                     "127.0.0.1:8479", "--id", "w0"]
            for name, command in commands.items():
                marker.unlink(missing_ok=True)
                done = subprocess.run(command, capture_output=True, text=True, cwd=tmp,
                                      check=False, timeout=600)
                lines = done.stderr.strip().splitlines()
                cases.append({"format": fmt, "entry": name, "exit_code": done.returncode,
                              "payload_ran": marker.exists(),
                              "traceback": "Traceback" in done.stderr,
                              "last_line": lines[-1] if lines else ""})
                print(f"  {fmt:10} {name:30} exit {done.returncode} payload ran: "
                      f"{marker.exists()}", flush=True)
        npz = root / "evil.npz"
        subprocess.run([sys.executable, "-c", _PICKLE_NPZ, str(npz), str(marker)], check=True)
        for name, code in {"api load_dataset (.npz)": "import keras_autoopt as ka; "
                                                      f"ka.load_dataset({str(npz)!r})",
                           "baseline np.load(allow_pickle=True)":
                               f"import numpy as np; np.load({str(npz)!r}, "
                               "allow_pickle=True)['x']"}.items():
            marker.unlink(missing_ok=True)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  cwd=tmp, check=False, timeout=600)
            cases.append({"format": "npz", "entry": name, "exit_code": done.returncode,
                          "payload_ran": marker.exists(), "traceback": None,
                          "last_line": (done.stderr.strip().splitlines() or [""])[-1]})
            print(f"  {'npz':10} {name:30} exit {done.returncode} payload ran: "
                  f"{marker.exists()}", flush=True)
    ours = [c for c in cases if not c["entry"].startswith("baseline")]
    baseline = [c for c in cases if c["entry"].startswith("baseline")]
    cli_cases = [c for c in ours if c["entry"].startswith("cli")]
    return {"cases": cases, "tried": len(ours),
            "payload_ran": sum(c["payload_ran"] for c in ours),
            "cli_exit_2_without_traceback": sum(c["exit_code"] == 2 and not c["traceback"]
                                                for c in cli_cases),
            "cli_cases": len(cli_cases),
            "baseline_tried": len(baseline),
            "baseline_payload_ran": sum(c["payload_ran"] for c in baseline)}


def qat_matrix() -> dict:
    spec = importlib.util.spec_from_file_location("_qat_matrix",
                                                  ROOT / "benchmarks" / "_qat_matrix.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_qat_matrix()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--external-kills", type=int, default=3)
    parser.add_argument("--distributed-runs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("untrusted", "qat", "bad_inputs"), default=None,
                        help="run one new section and merge it into the existing results")
    args = parser.parse_args()
    if args.only is not None:
        result = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
        if args.only == "untrusted":
            result["untrusted_files"] = _print_untrusted(untrusted_files())
        elif args.only == "bad_inputs":
            result["bad_inputs"] = bad_inputs()
            print(f"bad input: {result['bad_inputs']['rejected_cleanly']}/"
                  f"{result['bad_inputs']['tried']} refused cleanly")
        else:
            result["qat_matrix"] = _print_qat(qat_matrix())
        result.setdefault("commands", {})[args.only] = (
            "python benchmarks/faults.py " + " ".join(sys.argv[1:]))
        _write(result)
        return
    rng = random.Random(args.seed)
    points = [(name, config, kill_at, trials, None) for name, config, kill_at, trials
              in KILL_POINTS]
    points += [(f"external kill -9, search +{t:.2f}s", kill.SINGLE, None, 4, t)
               for t in (rng.uniform(0.0, 2.5) for _ in range(args.external_kills))]
    kills = []
    print(f"{'kill point':34} {'lost':>5} {'twice':>5} {'exact':>6} | keras-tuner alone: "
          f"{'lost':>5} {'twice':>5} {'exact':>6}")
    for name, config, kill_at, trials, after in points:
        ours = kill_and_resume(config, kill_at, trials, True, after)
        stock = kill_and_resume(config, kill_at, trials, False, after) if after is None \
            else None
        kills.append({"kill_point": name, "kill_at": kill_at or f"external:{after:.1f}s",
                      "ours": ours, "keras_tuner_alone": stock})
        s = stock or {"lost": "-", "duplicated": "-", "exact_count": "-"}
        print(f"{name:34} {ours['lost']:>5} {ours['duplicated']:>5} "
              f"{str(ours['exact_count']):>6} | {'':18} {s['lost']:>5} {s['duplicated']:>5} "
              f"{str(s['exact_count']):>6}", flush=True)
    killed = [k for k in kills if k["ours"]["killed"]]
    summary = {
        "kill_points_tried": len(kills),
        "kills_landed": len(killed),
        "completed_trials_lost": sum(k["ours"]["lost"] for k in kills),
        "trials_duplicated": sum(k["ours"]["duplicated"] for k in kills),
        "runs_with_wrong_trial_count": sum(not k["ours"]["exact_count"] for k in kills),
        "temp_files_left": sum(k["ours"]["temp_files_left"] for k in kills),
        "broken_json_files": sum(k["ours"]["broken_json"] for k in kills),
        "baseline_completed_trials_lost": sum(k["keras_tuner_alone"]["lost"] for k in kills
                                              if k["keras_tuner_alone"]),
        "baseline_trials_duplicated": sum(k["keras_tuner_alone"]["duplicated"] for k in kills
                                          if k["keras_tuner_alone"]),
        "baseline_runs_with_wrong_trial_count": sum(
            not k["keras_tuner_alone"]["exact_count"] for k in kills if k["keras_tuner_alone"]),
    }
    print(f"\nkill -9: {summary['kill_points_tried']} kill points, "
          f"{summary['completed_trials_lost']} completed trials lost, "
          f"{summary['trials_duplicated']} run twice, "
          f"{summary['runs_with_wrong_trial_count']} runs with a wrong trial count "
          f"(keras-tuner alone: {summary['baseline_completed_trials_lost']} lost, "
          f"{summary['baseline_trials_duplicated']} twice, "
          f"{summary['baseline_runs_with_wrong_trial_count']} wrong counts)", flush=True)
    bad = bad_inputs()
    print(f"bad input: {bad['rejected_cleanly']}/{bad['tried']} refused cleanly "
          f"({bad['by_surface']})", flush=True)
    distributed_result = distributed(args.distributed_runs)
    done = sum(r["completed"] for r in distributed_result["runs"])
    mean_wall = sum(r["wall_time_s"] for r in distributed_result["runs"]) / max(
        1, len(distributed_result["runs"]))
    print(f"distributed: {done}/{len(distributed_result['runs'])} runs completed after a "
          f"worker kill; wall time {mean_wall:.1f}s vs {distributed_result['baseline_wall_time_s']}"
          f"s without a kill ({mean_wall / distributed_result['baseline_wall_time_s']:.2f}x)")
    untrusted = _print_untrusted(untrusted_files())
    qat = _print_qat(qat_matrix())
    result = {
        "command": "python benchmarks/faults.py " + " ".join(sys.argv[1:]),
        "summary": summary, "kills": kills, "bad_inputs": bad,
        "distributed": {**distributed_result, "completed_after_worker_kill": done},
        "untrusted_files": untrusted, "qat_matrix": qat,
    }
    _write(result)


def _print_untrusted(untrusted: dict) -> dict:
    print(f"untrusted files: payload ran {untrusted['payload_ran']}/{untrusted['tried']} "
          f"(baseline tf_keras load_model / np.load: {untrusted['baseline_payload_ran']}/"
          f"{untrusted['baseline_tried']}); CLI exit 2 without traceback "
          f"{untrusted['cli_exit_2_without_traceback']}/{untrusted['cli_cases']}", flush=True)
    return untrusted


def _print_qat(qat: dict) -> dict:
    print(f"QAT matrix: {qat['passed']}/{qat['cases']} int8 exports pass verification",
          flush=True)
    return qat


def _write(result: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
