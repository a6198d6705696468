"""The ``keras-autoopt`` command.

``keras-autoopt demo`` runs the whole pipeline on the embedded digits data;
``keras-autoopt run --config FILE.yaml`` runs a user's configuration. Bad
input (a malformed or invalid YAML file, unusable data, an output folder
holding another run, a model file that would run code on load) prints one
clear message and exits with code 2, without a traceback. Any other failure
(a layer TF-MOT cannot wrap, a converter error, memory running out) prints
one line naming the stage, the cause and what to do, and exits with code 1;
``--debug`` prints the traceback too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

from keras_autoopt._defaults import DEFAULT_HEARTBEAT_S, DEFAULT_TRIAL_TIMEOUT_S
from keras_autoopt._failure import InputError, RunStopped, describe_failure
from keras_autoopt._quiet import quiet_stderr
from keras_autoopt._rules import DEFAULT_MAX_ACCURACY_DROP, MINIMIZE, check_max_accuracy_drop
from keras_autoopt.targets import TARGETS

# Nothing above loads TensorFlow: ``--help`` and argument errors answer at once. The
# package's heavy parts are imported in `_run_command`, once the arguments are good.

#: The demo: digits, a searchable ConvNet, a small multi-objective search for a
#: microcontroller (validation accuracy vs flash bytes of each trial's full-int8 .tflite,
#: checked and measured under TensorFlow Lite Micro against its 1 MB flash / 256 KB RAM
#: budgets), the most accurate front model exported for the target (int8, batch 1, C array).
#: Pruning and clustering are not searched and the model is not compressed further: TFLite
#: Micro stores every weight of a pruned or clustered model (only its gzip size shrinks),
#: so on this target they cost training time and save no flash. ``--target host`` keeps
#: the same search on the host CPU.
DEMO_SETTINGS = {
    "dataset": "digits", "hypermodel": "convnet", "trials": 12, "epochs": (5, 15),
    "seed": 0, "objectives": ["val_accuracy", "flash_bytes"], "target": "tflm",
    "compression_space": {"sparsities": [0.0], "clusters": [0]},
}


def demo_config():
    """The demo's `PipelineConfig` (``DEMO_CONFIG``)."""
    from keras_autoopt.config import PipelineConfig

    return PipelineConfig(**DEMO_SETTINGS)


def __getattr__(name: str):
    if name == "DEMO_CONFIG":  # built on use: the config module is not needed for --help
        return demo_config()
    raise AttributeError(f"module 'keras_autoopt.cli' has no attribute {name!r}")

EXIT_USAGE = 2
#: Exit code of a search that stopped on failing trials, or of a stage that failed
#: (nothing was wrong with the input).
EXIT_FAILED = 1
#: Exit code after Ctrl-C.
EXIT_INTERRUPTED = 130

_TARGET_HELP = ("where the models will run: " + ", ".join(TARGETS) +
                " (default: host; tflm and ethos-u* export full int8 with batch 1 and "
                "measure RAM)")
_TRUST_HELP = ("load a model file even if loading runs code it holds (Lambda layers, custom "
               "classes); only for files you trust")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="show tracebacks of failures (and of failed trials)")
    common.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own log lines and warnings too")
    return common


def _quiet_tensorflow() -> None:
    """Keep TensorFlow's INFO/WARNING lines (C++ and Python) out of the output.

    Must run before TensorFlow is imported for its C++ logs; a value the user
    set for ``TF_CPP_MIN_LOG_LEVEL`` wins.
    """
    import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("tensorflow", "absl", "h5py", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings(
        "ignore", module=r"(?:tensorflow|tf_keras|keras|keras_tuner|"
                         r"tensorflow_model_optimization|absl|h5py)(?:\.|$)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-autoopt",
        description="Search, export and measure accurate, cheap TFLite models.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()

    demo = commands.add_parser(
        "demo", parents=[common], help="run the whole pipeline on the embedded digits data",
        description="Search ConvNets on scikit-learn's digits (1,797 8x8 images) for the "
                    "Pareto front of validation accuracy vs flash bytes on a microcontroller "
                    "(every trial exported in full int8 with batch 1, run under TensorFlow "
                    "Lite Micro and measured: flash, RAM arena, MACs), export the most "
                    "accurate front model for the target (with a C array for firmware) and "
                    "write a report. --target picks another device.",
    )
    demo.add_argument("--output", default="runs/demo", help="output folder (default: %(default)s)")
    demo.add_argument("--trials", type=int, default=DEMO_SETTINGS["trials"],
                      help="number of search trials (default: %(default)s)")
    demo.add_argument("--overwrite", action="store_true",
                      help="start over instead of resuming a run in the output folder")
    demo.add_argument("--target", default=None,
                      help=_TARGET_HELP.replace("default: host", "default: tflm"))

    run = commands.add_parser(
        "run", parents=[common], help="run the pipeline from a YAML configuration",
        description="Run the pipeline from a YAML file with the keys dataset, hypermodel, "
                    "tuner, trials, epochs, export_modes, seed, executions_per_trial, refit, "
                    "compress, and for a multi-objective search objectives, oracle, "
                    "constraints, compression_space, teacher.",
    )
    run.add_argument("--config", required=True, help="the YAML configuration file")
    run.add_argument("--output", default=None,
                     help="output folder (default: runs/<config file name>)")
    run.add_argument("--overwrite", action="store_true",
                     help="start over instead of resuming a run in the output folder")
    run.add_argument("--serve", default=None, metavar="HOST:PORT",
                     help="serve a distributed search on this address; workers started with "
                          "`keras-autoopt worker --chief HOST:PORT` run the trials")
    run.add_argument("--trial-timeout", type=float, default=DEFAULT_TRIAL_TIMEOUT_S,
                     metavar="SECONDS",
                     help="with --serve: a worker silent this long has its trial handed to "
                          "another (default: %(default)s)")
    run.add_argument("--trust-model", action="store_true", help=_TRUST_HELP + " (teacher:)")
    run.add_argument("--target", default=None,
                     help=_TARGET_HELP + "; overrides the configuration's target:")
    worker = commands.add_parser(
        "worker", parents=[common],
        help="run trials of a distributed search served by `run --serve`",
        description="Ask the chief for trials until the search ends, writing them into the "
                    "chief's output folder (shared). Same configuration as the chief; the "
                    "exports and the report are the chief's. keras-tuner's variables "
                    "KERASTUNER_TUNER_ID / KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT are "
                    "set from --id and --chief.",
    )
    worker.add_argument("--chief", required=True, metavar="HOST:PORT",
                        help="the address the chief serves on")
    worker.add_argument("--id", required=True, dest="worker_id",
                        help="this worker's unique id, e.g. worker0")
    worker.add_argument("--config", default=None,
                        help="the chief's YAML configuration (default: the demo's)")
    worker.add_argument("--output", required=True, help="the chief's output folder")
    worker.add_argument("--heartbeat", type=float, default=DEFAULT_HEARTBEAT_S,
                        metavar="SECONDS",
                        help="seconds between two reports on the running trial "
                             "(default: %(default)s)")
    worker.add_argument("--trust-model", action="store_true", help=_TRUST_HELP + " (teacher:)")
    compress = commands.add_parser(
        "compress", parents=[common], help="compress a saved model within an accuracy budget",
        description="Structured pruning (whole channels removed), per-layer sensitivity "
                    "analysis, pruning, clustering and QAT of a saved tf_keras classifier, "
                    "stopping at the accuracy budget (paired decisions on the validation "
                    "split); every stage is exported to TFLite and measured under LiteRT "
                    "(and on --target).",
    )
    compress.add_argument("--model", required=True, help="saved model (.keras, .h5, SavedModel)")
    compress.add_argument("--output", default="runs/compress",
                          help="output folder (default: %(default)s)")
    compress.add_argument("--dataset", default="digits",
                          help="data: digits, mnist1d, a .npz file or an image folder "
                               "(default: digits)")
    compress.add_argument("--max-accuracy-drop", type=float, default=DEFAULT_MAX_ACCURACY_DROP,
                          help="largest validation accuracy drop, as a fraction "
                               "(default: %(default)s)")
    compress.add_argument("--target", default=None,
                          help="measure every stage on this device target (e.g. tflm: flash "
                               "and TFLite Micro arena); stages it cannot run are not chosen")
    compress.add_argument("--minimize", choices=MINIMIZE, default="flash",
                          help="what the chosen stage has least of (default: %(default)s; "
                               "ram needs --target)")
    compress.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    compress.add_argument("--trust-model", action="store_true", help=_TRUST_HELP)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Our own warnings as one line; others as Python shows them."""
    if category.__module__.startswith("keras_autoopt"):
        print(f"keras-autoopt: warning: {message}", file=sys.stderr, flush=True)
    else:
        _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)


_PYTHON_SHOWWARNING = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; None means ``sys.argv[1:]``.

    Returns:
        The exit code: 0 on success, 2 for bad input, 1 for a search that
        stopped or a stage that failed, 130 after Ctrl-C.

    """
    args = _parser().parse_args(argv)
    with warnings.catch_warnings():  # the filters and the display are the command's only
        warnings.showwarning = _show_warning
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    quiet = contextlib.nullcontext() if args.verbose else quiet_stderr()
    try:
        _check_arguments(args)
        with quiet:
            return _run_command(args)
    except InputError as exc:
        _report(args, f"keras-autoopt: error: {exc}")
        return EXIT_USAGE
    except RunStopped as exc:
        _report(args, f"keras-autoopt: the search stopped: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _report(args, "keras-autoopt: interrupted; run the same command again to resume.")
        return EXIT_INTERRUPTED
    except Exception as exc:  # anything else: one line, the traceback only with --debug
        _report(args, f"keras-autoopt: {args.command}: {describe_failure(exc)}")
        return EXIT_FAILED
    finally:
        if "keras_autoopt.search" in sys.modules:
            sys.modules["keras_autoopt.search"].set_debug(None)


def _report(args: argparse.Namespace, line: str) -> None:
    if args.debug:
        traceback.print_exc()
    print(line, file=sys.stderr, flush=True)


def _with_target(config, target: str):
    """``config`` with ``--target`` (checked like the YAML key)."""
    from keras_autoopt.config import ConfigError, PipelineConfig

    try:
        return PipelineConfig.model_validate({**dict(config), "target": target})
    except ValueError as exc:
        raise ConfigError(f"Received: --target={target!r}; expected a multi-objective search "
                          f"(objectives: in the configuration): {exc}") from None


def _check_arguments(args: argparse.Namespace) -> None:
    """The checks that need no TensorFlow, before anything heavy is imported."""
    if args.output is not None and Path(args.output).exists() \
            and not Path(args.output).is_dir():
        raise InputError(f"Received: --output={args.output!r}, which is a file; expected "
                         "a folder (existing or not).")
    if args.command == "compress":
        try:
            check_max_accuracy_drop("--max-accuracy-drop", args.max_accuracy_drop)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if args.minimize == "ram" and args.target is None:
            raise InputError("Received: --minimize=ram without --target; expected a target "
                             "that reports RAM, e.g. --target tflm.")
    if args.command == "demo" and args.trials < 1:
        raise InputError(f"Received: --trials={args.trials}; expected a positive integer.")
    if getattr(args, "target", None) is not None:
        from keras_autoopt.targets import get_target

        try:
            target = get_target(args.target)
        except ValueError as exc:
            raise InputError(str(exc).replace("Received: target=", "Received: --target=",
                                              1)) from None
        if getattr(args, "minimize", None) == "ram" and target.runtime == "litert":
            raise InputError(f"Received: --minimize=ram with --target={args.target}, which "
                             "reports no RAM; expected a TFLite Micro or Ethos-U target, "
                             "e.g. --target tflm.")


def _run_command(args: argparse.Namespace) -> int:
    if not args.verbose:
        _quiet_tensorflow()
    from keras_autoopt.config import load_config
    from keras_autoopt.pipeline import compress_saved_model, run_pipeline, run_worker
    from keras_autoopt.report import format_stages_table
    from keras_autoopt.search import set_debug

    set_debug(True if args.debug else None)  # None: KERAS_AUTOOPT_DEBUG decides
    if args.command == "compress":
        result = compress_saved_model(args.model, args.output, dataset=args.dataset,
                                      seed=args.seed,
                                      max_accuracy_drop=args.max_accuracy_drop,
                                      target=args.target, minimize=args.minimize,
                                      trust_model=args.trust_model)
        print("\n" + format_stages_table(result.report["stages"]))
        print(f"\nReport: {result.paths.markdown}")
        return 0
    if args.command == "worker":
        config = load_config(args.config) if args.config else demo_config()
        run_worker(args.chief, args.worker_id, output_dir=args.output, config=config,
                   heartbeat=args.heartbeat, trust_model=args.trust_model)
        return 0
    if args.command == "demo":
        config = demo_config().model_copy(update={"trials": args.trials})
        output = args.output
    else:
        config = load_config(args.config)
        output = args.output or str(Path("runs") / Path(args.config).stem)
    if args.target is not None:
        config = _with_target(config, args.target)
    serve = getattr(args, "serve", None)
    run_pipeline(output_dir=output, config=config, overwrite=args.overwrite, serve=serve,
                 trust_model=getattr(args, "trust_model", False),
                 **({"trial_timeout": args.trial_timeout} if serve else {}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
