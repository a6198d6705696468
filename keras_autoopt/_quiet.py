"""Keep TensorFlow's own log lines out of what a command-line user sees.

TensorFlow, its TFLite converter and LiteRT write INFO / WARNING lines from
C++ straight to file descriptor 2, some before ``absl`` logging is even set up
(so ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them): CUDA probes, CPU feature
notes, converter settings, the XNNPACK delegate. `quiet_stderr` sends file
descriptor 2 through a pipe and drops the lines that match `TF_NOISE`;
every other line (ours, errors, tracebacks) passes unchanged and in order.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import threading
from collections.abc import Iterator

#: TensorFlow's start-up, absl, converter and LiteRT chatter (matched at the line start).
TF_NOISE = re.compile(
    rb"^(?:[IW]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\]"  # absl INFO / WARNING
    rb"|E\d{4} [\d:.]+ +\d+ cuda_\w+\.cc:\d+\]"  # CUDA probes on a machine without GPU
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|To enable the following instructions: "
    rb"|This TensorFlow binary is optimized "
    rb"|INFO: Created TensorFlow Lite "
    rb"|INFO: Initialized TensorFlow Lite runtime"
    rb"|fully_quantize: \d"
    rb"|WARNING:tensorflow:"
    rb"|WARNING:absl:"
    rb")"
)


def _flush_c_streams() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def quiet_stderr(pattern: re.Pattern[bytes] = TF_NOISE) -> Iterator[None]:
    """Drop the lines of file descriptor 2 that match ``pattern`` inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    out_fd = os.dup(saved)  # the pump's own copy: `saved` is closed when the block ends

    def pump() -> None:
        with os.fdopen(read_end, "rb") as reader, os.fdopen(out_fd, "wb", buffering=0) as out:
            for line in reader:
                if not pattern.match(line):
                    out.write(line)

    thread = threading.Thread(target=pump, name="keras-autoopt-quiet-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        _flush_c_streams()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump reads to the end
        os.close(saved)
        thread.join(timeout=5)
