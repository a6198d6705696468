"""Child process of `keras_autoopt.measure.run_tflm`: runs one model under TFLite Micro.

Run as ``python _tflm_worker.py REQUEST_DIR`` (by file path, so the child
imports only NumPy and ``tflite_micro``, not this package or TensorFlow). It
reads ``REQUEST_DIR/request.npz`` (``model``: the path; ``inputs``: the
samples, already in the model's input type; ``arena_size``), invokes the
model once per sample and writes ``REQUEST_DIR/result.npz`` (``outputs``, in
the model's output type) and ``REQUEST_DIR/result.json`` (``wall_time_s``, or
``error``). TFLM's own messages, and the ``RecordingMicroAllocator`` lines
that `print_allocations` writes after the last invoke, go to this process's
stderr, which the parent reads. A crash of the C++ runtime ends only this
process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def _run(folder: Path) -> dict:
    from tflite_micro.python.tflite_micro import runtime

    request = np.load(folder / "request.npz")
    inputs = request["inputs"]
    interpreter = runtime.Interpreter.from_file(
        str(request["model"]), arena_size=int(request["arena_size"])
    )
    outputs = []
    start = time.perf_counter()
    for i in range(len(inputs)):
        interpreter.set_input(inputs[i : i + 1], 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0), copy=True))
    wall_time_s = time.perf_counter() - start
    if not outputs:  # still report the arena: it is planned before the first invoke
        shape = interpreter.get_output_details(0)["shape"]
        dtype = interpreter.get_output_details(0)["dtype"]
        outputs = [np.zeros((0, *shape[1:]), dtype=dtype)]
    sys.stdout.flush()
    sys.stderr.flush()
    interpreter.print_allocations()  # C++ writes to stderr (unbuffered)
    np.savez(folder / "result.npz", outputs=np.concatenate(outputs, axis=0))
    return {"wall_time_s": wall_time_s}


def main(argv: list[str]) -> int:
    """Run the request in ``argv[0]``; always write ``result.json`` unless the runtime crashes."""
    folder = Path(argv[0])
    try:
        result = _run(folder)
    except Exception as error:  # noqa: BLE001  (reported to the parent, which raises)
        result = {"error": f"{type(error).__name__}: {error}"}
    (folder / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
