"""`measure_on_target`: what an exported ``.tflite`` costs on the device a `Target` names."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from keras_autoopt.measure._macs import count_macs, operator_counts
from keras_autoopt.measure._tflm import check_tflm
from keras_autoopt.measure._vela import run_vela
from keras_autoopt.targets import Target, get_target

#: Samples of ``x`` that TFLite Micro runs to check a model against LiteRT.
TFLM_CHECK_SAMPLES = 32


@dataclasses.dataclass(frozen=True)
class DeviceMetrics:
    """One exported model measured for its target.

    Attributes:
        target: The target's name.
        flash_bytes: What the device stores: the ``.tflite`` bytes, or on an
            Ethos-U target Vela's flash figure (the compiled model's weights
            and command stream; 0 when Vela's memory mode keeps them in DRAM,
            see ``dram_bytes``).
        ram_bytes: Peak RAM: the TFLite Micro arena (``tflm``), Vela's SRAM
            (Ethos-U); None on LiteRT targets (LiteRT does not report its
            arena).
        macs: Multiply-accumulates of one inference (`count_macs`).
        operators: Operator type -> count in the ``.tflite``.
        tflm_compatible: TFLite Micro ran the file and its outputs match
            LiteRT's (`check_tflm`); None on other targets.
        reason: Why the model does not run on the target, or None.
        npu_latency_ms: Vela's NPU inference time (Ethos-U), else None.
        npu_share: Share of operators on the NPU (Ethos-U), else None.
        cpu_operators: Operators left on the CPU (Ethos-U).
        dram_bytes: Vela's DRAM figure (Ethos-U65 memory modes), else None.
    """

    target: str
    flash_bytes: int
    ram_bytes: int | None
    macs: int
    operators: dict[str, int]
    tflm_compatible: bool | None = None
    reason: str | None = None
    npu_latency_ms: float | None = None
    npu_share: float | None = None
    cpu_operators: tuple[str, ...] = ()
    dram_bytes: int | None = None

    @property
    def runs(self) -> bool:
        """Whether the model runs on the target as exported."""
        return self.reason is None

    def metrics(self) -> dict[str, float]:
        """The numeric figures, as trial metrics (None ones left out)."""
        values = {"flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes,
                  "macs": self.macs, "npu_latency_ms": self.npu_latency_ms,
                  "npu_share": self.npu_share, "target_runs": 1.0 if self.runs else 0.0}
        return {key: float(value) for key, value in values.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict."""
        out = dataclasses.asdict(self)
        out["cpu_operators"] = list(self.cpu_operators)
        return out


def measure_on_target(path: str | os.PathLike, target: Target | str,
                      x: np.ndarray | None = None) -> DeviceMetrics:
    """Measure an exported ``.tflite`` as ``target`` runs it.

    Every target: the file's bytes (flash), MACs and operators. ``tflm``
    runtimes: TFLite Micro runs the first `TFLM_CHECK_SAMPLES` samples of
    ``x`` (required) and its arena is the RAM figure; a model it cannot run,
    or whose outputs differ from LiteRT's, gets a ``reason``. ``vela``
    runtimes: Vela compiles the file for the target's accelerator, system
    configuration and memory mode; flash, SRAM and NPU time are its
    estimates, and operators it leaves on the CPU are a ``reason``.

    Args:
        path: The exported ``.tflite`` file.
        target: A `Target` or anything `get_target` accepts.
        x: Input samples (float, as the Keras model takes them); required
            for TFLite Micro targets.

    Returns:
        The device figures.

    Raises:
        ValueError: For a missing file, or a TFLite Micro target without ``x``.
    """
    target = get_target(target)
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Received: path={str(path)!r}; expected an existing .tflite file.")
    figures: dict[str, Any] = {"target": target.name, "flash_bytes": path.stat().st_size,
                               "ram_bytes": None, "macs": count_macs(path),
                               "operators": operator_counts(path)}
    if target.runtime == "tflm":
        if x is None or len(x) == 0:
            raise ValueError(
                f"Received: x={x!r} for target {target.name!r}; expected input samples: "
                "TFLite Micro runs the model on them to measure its arena and check it.")
        check = check_tflm(path, np.asarray(x)[:TFLM_CHECK_SAMPLES])
        figures.update(ram_bytes=check.arena_bytes, tflm_compatible=check.compatible,
                       reason=check.reason)
    elif target.runtime == "vela":
        report = run_vela(path, target.accelerator, system_config=target.system_config,
                          memory_mode=target.memory_mode)
        figures.update(flash_bytes=report.flash_bytes, ram_bytes=report.sram_bytes,
                       npu_latency_ms=report.npu_latency_ms, npu_share=report.npu_share,
                       cpu_operators=report.cpu_operators, dram_bytes=report.dram_bytes)
        if report.cpu_operators:
            figures["reason"] = (f"{len(report.cpu_operators)} operator(s) left on the CPU by "
                                 f"Vela: {', '.join(report.cpu_operators[:5])}")
    return DeviceMetrics(**figures)
