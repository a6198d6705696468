"""Run ``keras-autoopt`` in a process that kills itself with SIGKILL at a chosen point.

Used by ``tests/faults`` and ``benchmarks/faults.py``; not part of the package.

    python tests/faults/driver.py --kill-at replace:best_float32.tflite:1 -- run --config c.yaml

Kill points (``--kill-at``):

* ``replace:<file name>:<n>``: at the ``n``-th atomic rename onto a file of that
  name, after the temporary file is written and before the rename — the last
  moment a non-atomic writer would be half done. ``oracle.json``,
  ``trial.json``, ``model.tflite``, ``best_float32.tflite``, ``report.json``,
  ``report.md`` and the plots are all written this way.
* ``epoch:<n>``: at the end of the ``n``-th training epoch of the process
  (mid-trial).

``--no-repair`` reloads the oracle as keras-tuner 1.4.8 does (the baseline of
``benchmarks/faults.py``). Every completed trial is appended to ``--ledger``
as ``<trial_id> <pid>``, so a test can count how often each trial ran to
completion across processes.
Anything after ``--`` is passed to ``keras_autoopt.cli.main``.

`run_config`, `command` and `env` build what the tests and the benchmark run (load this file
with ``importlib.util.spec_from_file_location``; tests cannot import it by name).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import yaml

BASE_CONFIG = {
    "dataset": "digits",
    "hypermodel": "dense",
    "tuner": "random",
    "trials": 4,
    "epochs": [1, 2],
    "export_modes": ["float32"],
    "refit": False,
    "seed": 0,
}
"""A small search on digits: what `run_config` changes."""


def run_config(**changes) -> str:
    """The YAML of `BASE_CONFIG` with ``changes``; a change to ``None`` leaves that key out."""
    config = {**BASE_CONFIG, **changes}
    return yaml.safe_dump({k: v for k, v in config.items() if v is not None}, sort_keys=False)


def command(workdir: Path, cli_args: list[str], kill_at: str | None = None) -> list[str]:
    """Run ``keras-autoopt <cli_args>`` through this driver, with its ledger in ``workdir``."""
    driver = [sys.executable, str(Path(__file__).resolve()), "--ledger", str(workdir / "ledger")]
    if kill_at:
        driver += ["--kill-at", kill_at]
    return [*driver, "--", *cli_args]


def env() -> dict[str, str]:
    """This process's environment, with TensorFlow's C++ logging quiet."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _kill() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install_replace_kill(name: str, nth: int) -> None:
    real_replace = os.replace
    seen = {"n": 0}

    def replace(src, dst, *args, **kwargs):
        if os.path.basename(os.fspath(dst)) == name:
            seen["n"] += 1
            if seen["n"] == nth:
                _kill()
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace


def _install_epoch_kill(nth: int) -> None:
    from keras_autoopt.search import FailOnNonFiniteLoss

    seen = {"n": 0}
    original = getattr(FailOnNonFiniteLoss, "on_epoch_end", None)

    def on_epoch_end(self, epoch, logs=None):
        seen["n"] += 1
        if seen["n"] == nth:
            _kill()
        if original is not None:
            original(self, epoch, logs)

    FailOnNonFiniteLoss.on_epoch_end = on_epoch_end


def _install_ledger(path: str) -> None:
    from keras_autoopt._backend import kt

    base = next(c for c in kt.Tuner.__mro__ if c.__name__ == "BaseTuner")
    original = base.on_trial_end

    def on_trial_end(self, trial):
        original(self, trial)
        ended = self.oracle.get_trial(trial.trial_id)
        if ended.status == "COMPLETED":
            with open(path, "a", encoding="utf-8") as ledger:
                ledger.write(f"{trial.trial_id} {os.getpid()}\n")
                ledger.flush()
                os.fsync(ledger.fileno())

    base.on_trial_end = on_trial_end


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-at", default=None)
    parser.add_argument("--ledger", default=None)
    parser.add_argument("--no-repair", action="store_true",
                        help="baseline: reload the oracle as keras-tuner does, unrepaired")
    args = parser.parse_args(argv[:split])
    import keras_autoopt  # noqa: F401  (tf_keras before TensorFlow)
    from keras_autoopt.cli import main as cli_main

    if args.ledger:
        _install_ledger(args.ledger)
    if args.no_repair:
        from keras_autoopt.search import _reliability

        _reliability.repair_reloaded_oracle = lambda oracle: {"requeued": [], "unqueued": []}
    if args.kill_at:
        kind, _, rest = args.kill_at.partition(":")
        if kind == "replace":
            name, _, nth = rest.rpartition(":")
            _install_replace_kill(name, int(nth))
        elif kind == "epoch":
            _install_epoch_kill(int(rest))
        else:
            raise SystemExit(f"unknown kill point {args.kill_at!r}")
    return cli_main(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main())
