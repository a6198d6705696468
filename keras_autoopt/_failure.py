"""Failures a user can act on: which stage failed, and one line saying what to do.

A long job (search, export, compression) can fail for reasons that are not
bugs of ours: a layer TF-MOT cannot wrap, a model the TFLite converter
rejects, memory running out. The pipeline marks each stage with `stage`; the
command line turns any exception into one line with `describe_failure`
(``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_STAGE_ATTR = "keras_autoopt_stage"


class InputError(ValueError):
    """Bad input from the user (an argument, a file, data, a configuration).

    The base of every error that the command line reports as a usage error
    (exit code 2, no traceback): `keras_autoopt.ConfigError`,
    `keras_autoopt.DatasetError`, `keras_autoopt.ModelFileError`,
    `keras_autoopt.SetupError`. It is defined here, away from TensorFlow, so
    that the command line can tell it without importing the package's heavy
    parts.
    """


class RunStopped(RuntimeError):
    """A run that stopped for a reason that is not bad input (e.g. failing trials)."""

_MAX_REASON = 300


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Mark an exception raised inside the block with ``name`` (innermost stage wins).

    Args:
        name: What the block does, e.g. ``"compression"`` or ``"export (int8)"``.
    """
    try:
        yield
    except Exception as exc:
        if getattr(exc, _STAGE_ATTR, None) is None:
            with contextlib.suppress(AttributeError, TypeError):
                setattr(exc, _STAGE_ATTR, name)
        raise


def failed_stage(exc: BaseException) -> str | None:
    """The stage `stage` recorded on ``exc``, if any."""
    return getattr(exc, _STAGE_ATTR, None)


def one_line(text: str, limit: int = _MAX_REASON) -> str:
    """``text`` on one line (whitespace collapsed), at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def failure_hint(exc: BaseException) -> str:
    """What the user can do about ``exc``, in one sentence."""
    names, text = _names(exc), str(exc)
    if isinstance(exc, MemoryError) or "ResourceExhaustedError" in names or \
            "out of memory" in text.lower():
        return ("out of memory: lower the batch size, the model's width (filters / units) or "
                "the amount of data")
    if "ConverterError" in names:
        return ("the TFLite converter rejected the model: try another export mode, or replace "
                "the layer or operation the message names")
    if "ExportVerificationError" in names:
        return "the exported .tflite does not compute what the Keras model computes"
    if "UnsafeModelError" in names or "ModelFileError" in names:
        return "check the model file"
    if any(marker in text for marker in (
            "is not supported", "supported layer", "not supported by Default8Bit",
            "Please initialize Prune", "Please initialize ClusterWeights")):
        return ("TF-MOT cannot compress the layer the message names: leave it out "
                "(skip_layers=[...], or skip_unsupported=True) or replace it with a standard "
                "layer")
    return ("this may be a bug of keras_autoopt: run the same command with --debug for the "
            "traceback and report it")


def describe_failure(exc: BaseException) -> str:
    """One line: the stage, the exception and what to do.

    Example: ``compression failed: RuntimeError: Layer lambda ... is not
    supported ... (TF-MOT cannot compress the layer the message names: ...)``.
    """
    where = failed_stage(exc) or "the run"
    reason = one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return f"{where} failed: {reason} ({failure_hint(exc)})."

