"""Compiling ``.tflite`` models for Arm Ethos-U NPUs with Vela, and reading its estimates.

`run_vela` runs the ``vela`` command of the ``ethos-u-vela`` package in a
child process and reads the summary CSV it writes
(``<name>_summary_<system config>.csv``) and the operators it reports as left
on the CPU (``--show-cpu-operations``). Figures are Vela's static
performance estimates for one inference, not measurements on hardware.

Vela only maps integer (int8 / int16) operators to the NPU; float operators,
and every operator of a float32 or hybrid ("dynamic") export, stay on the
Cortex-M CPU, where Vela estimates nothing for them.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from keras_autoopt._checks import check_positive_float
from keras_autoopt.measure._macs import _load
from keras_autoopt.targets import VELA_ACCELERATORS, VELA_DEFAULTS

__all__ = ["VELA_ACCELERATORS", "VelaError", "VelaReport", "run_vela"]

# The accelerators and each family's default system config / memory mode are the
# targets' (one list, `keras_autoopt.targets`); `run_vela` accepts the same names.
_CONFIG_FILE = "Arm/vela.ini"  # the configuration file bundled with ethos-u-vela
_OPERATOR_COUNT = re.compile(r"^(CPU|NPU) operators = (\d+)", re.MULTILINE)
_CPU_OPERATOR = re.compile(r"^\s*CPU: (\S+) = (.*?)(?: \(outputs \[.*\]\))?\s*$", re.MULTILINE)


class VelaError(RuntimeError):
    """Vela is missing or could not compile a model.

    Attributes:
        path: The ``.tflite`` file (None when Vela is missing).
        reason: Vela's own message, or why it could not be started.

    """

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else Path(path)
        self.reason = reason
        what = "Vela" if path is None else f"Vela cannot compile {str(path)!r}"
        super().__init__(f"{what}: {reason}")


@dataclass(frozen=True)
class VelaReport:
    """Vela's estimates for one inference of a model on an Ethos-U NPU.

    Attributes:
        accelerator: The accelerator configuration, e.g. ``"ethos-u55-128"``.
        system_config: The system configuration of Vela's ``Arm/vela.ini``.
        memory_mode: The memory mode of Vela's ``Arm/vela.ini``.
        npu_latency_ms: Estimated inference time of the NPU part, in ms
            (0 when nothing runs on the NPU; CPU operators are not timed).
        sram_bytes: SRAM used, in bytes (Vela reports KiB).
        flash_bytes: On- and off-chip flash used (weights), in bytes.
        dram_bytes: DRAM used, in bytes (the Ethos-U65 configurations keep
            weights there instead of flash).
        macs: Vela's ``nn_macs``: MACs of the operators on the NPU, counting
            the arithmetic of ops it lowers (an int8 softmax).
        cycles_npu: Estimated NPU cycles.
        cycles_total: Estimated total cycles, memory accesses included.
        npu_operators: Operators Vela placed on the NPU, as Vela counts them
            after rewriting the graph (an int8 softmax becomes many).
        cpu_operators: The original operators left on the CPU, as
            ``"OP_TYPE: output tensor name"``.
        npu_share: The NPU's share of operators as Vela prints it, ``NPU / (NPU
            + CPU operators)`` in its own counts; 1.0 when every operator runs
            on the NPU, 0.0 when none does.
        vela_model: The compiled ``<name>_vela.tflite`` when ``output_dir``
            was given, else None (it was in a deleted temporary folder).

    """

    accelerator: str
    system_config: str
    memory_mode: str
    npu_latency_ms: float
    sram_bytes: int
    flash_bytes: int
    dram_bytes: int
    macs: int
    cycles_npu: int
    cycles_total: int
    npu_operators: int
    cpu_operators: tuple[str, ...]
    npu_share: float
    vela_model: Path | None


def _vela_command() -> str:
    beside = Path(sys.executable).with_name("vela")
    if beside.is_file():
        return str(beside)
    found = shutil.which("vela")
    if found is None:
        raise VelaError(
            None,
            f"the 'vela' command was found neither next to {sys.executable!r} nor on PATH; "
            "install the package ethos-u-vela (pip install 'ethos-u-vela>=4.0,<6').",
        )
    return found


def _number(row: dict, key: str) -> float:
    value = float(row.get(key) or 0.0)
    return 0.0 if value != value else value  # Vela writes nan when nothing runs on the NPU


def _op_types(path: Path) -> dict[str, str]:
    """Output tensor name -> operator type, over every subgraph."""
    types = {}
    for graph in _load(path, "path"):
        for op in graph.operators:
            for index in op.outputs:
                types[graph.tensors[index].name] = op.name
    return types


def run_vela(
    path: str | os.PathLike,
    accelerator: str = "ethos-u55-128",
    *,
    system_config: str | None = None,
    memory_mode: str | None = None,
    output_dir: str | os.PathLike | None = None,
    timeout: float = 600.0,
) -> VelaReport:
    """Compile a ``.tflite`` model with Vela and return its estimates.

    Args:
        path: The ``.tflite`` file. Export with a fixed batch of 1 (Vela sets
            a dynamic batch dimension to 1 and warns).
        accelerator: One of `VELA_ACCELERATORS`.
        system_config: A system configuration of Vela's ``Arm/vela.ini``;
            default ``"Ethos_U55_High_End_Embedded"`` for an Ethos-U55 and
            ``"Ethos_U65_High_End"`` for an Ethos-U65.
        memory_mode: A memory mode of ``Arm/vela.ini``; default
            ``"Shared_Sram"`` for an Ethos-U55 and ``"Dedicated_Sram"`` for an
            Ethos-U65.
        output_dir: A folder to keep Vela's files in (the compiled
            ``<name>_vela.tflite`` and the summary CSV); by default they are
            written to a temporary folder and deleted.
        timeout: Seconds before Vela is stopped.

    Returns:
        A `VelaReport`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If ``accelerator`` is not a known name, ``timeout`` is not
            positive, or the file is not a TFLite model.
        VelaError: If the ``vela`` command is missing, fails (its message is
            included: an unknown ``system_config``, a model it cannot read),
            times out, or writes no summary.

    """
    if accelerator not in VELA_ACCELERATORS:
        raise ValueError(
            f"Received: accelerator={accelerator!r}; expected one of "
            f"{', '.join(VELA_ACCELERATORS)}."
        )
    timeout = check_positive_float("timeout", timeout)
    path = Path(path)
    op_types = _op_types(path)  # also checks that the file exists and is a model
    family = accelerator.rsplit("-", 1)[0]
    system_config = system_config or VELA_DEFAULTS[family][0]
    memory_mode = memory_mode or VELA_DEFAULTS[family][1]
    command = _vela_command()
    with tempfile.TemporaryDirectory(prefix="keras_autoopt_vela_") as scratch:
        folder = Path(output_dir) if output_dir is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        arguments = [
            command,
            str(path.resolve()),
            "--accelerator-config",
            accelerator,
            "--config",
            _CONFIG_FILE,
            "--system-config",
            system_config,
            "--memory-mode",
            memory_mode,
            "--output-dir",
            str(folder.resolve()),
            "--show-cpu-operations",
        ]
        try:
            done = subprocess.run(
                arguments,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd=scratch,
            )
        except subprocess.TimeoutExpired as error:
            raise VelaError(path, f"Vela did not finish within timeout={timeout} s.") from error
        summary = folder / f"{path.stem}_summary_{system_config}.csv"
        if done.returncode != 0 or not summary.is_file():
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            said = lines[-1] if lines else done.stdout.strip()[-500:]
            raise VelaError(path, f"vela exited with code {done.returncode}: {said}")
        with summary.open(newline="") as file:
            row = next(csv.DictReader(file))
    counts = dict(_OPERATOR_COUNT.findall(done.stdout))
    cpu = tuple(
        f"{op_types.get(name, kind)}: {name}" for kind, name in _CPU_OPERATOR.findall(done.stdout)
    )
    npu = int(counts.get("NPU", 0))
    total = npu + int(counts.get("CPU", len(cpu)))
    kib = 1024
    return VelaReport(
        accelerator=accelerator,
        system_config=system_config,
        memory_mode=memory_mode,
        npu_latency_ms=_number(row, "inference_time") * 1000.0,
        sram_bytes=round(_number(row, "sram_memory_used") * kib),
        flash_bytes=round(
            (_number(row, "off_chip_flash_memory_used") + _number(row, "on_chip_flash_memory_used"))
            * kib
        ),
        dram_bytes=round(_number(row, "dram_memory_used") * kib),
        macs=int(_number(row, "nn_macs")),
        cycles_npu=int(_number(row, "cycles_npu")),
        cycles_total=int(_number(row, "cycles_total")),
        npu_operators=npu,
        cpu_operators=cpu,
        npu_share=npu / total if total else 0.0,
        vela_model=(folder / f"{path.stem}_vela.tflite") if output_dir is not None else None,
    )
