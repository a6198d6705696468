"""Hard constraints on the exported model, checked before training and after export.

`Constraints` are hard limits: a trial that breaks one fails, with the reason,
before training when its parameter count already rules it out (by
`estimate_int8_bytes`, a lower bound on its ``.tflite`` size), or after export
otherwise.

This module imports no TensorFlow / Keras, like an Oracle.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

from keras_autoopt._checks import check_positive_int

TFLITE_FLOOR_BYTES = 800
"""A lower bound on the bytes of any ``.tflite`` file beyond its weights.

A ``.tflite`` file holds, besides the weights, a flatbuffer of tensors,
operators, buffers, signatures and metadata. Measured with the converter of
this package (TF 2.x, ``export_tflite``): 852 bytes for a model with no
weight at all (a lone ``Softmax``), 980 to 986 bytes beyond the weights for
a single ``Dense`` layer as float32 / dynamic, 1,095 to 1,100 as int8 (the
quantization parameters add about 120 bytes), 1,316 for ``Dense`` +
``softmax`` as int8, and more with every layer (2,230 for a small
conv / pooling / dense stack as int8). 800 stays below all of them, so that
`estimate_int8_bytes` stays a lower bound.
"""

_MEASURED_KEYS = ("size_bytes", "latency_us", "val_accuracy", "flash_bytes", "ram_bytes",
                  "macs", "npu_latency_ms")


def estimate_int8_bytes(params: int) -> int:
    """Return a lower bound on the ``.tflite`` size of a model with ``params`` weights.

    ``params`` bytes (one byte per parameter: the int8 weights, int8 export
    being the mode that stores weights most compactly; biases take 4 bytes
    as int32 and float exports take 2 or 4 per weight) plus
    `TFLITE_FLOOR_BYTES`. Every export mode of this package produces a file
    at least this large, so a model whose estimate exceeds a size limit
    cannot meet it; the converse does not hold (the real file is larger:
    per-layer overhead, int32 biases).

    Note that for tiny models (no tensor of 1,024+ elements) int8 files are
    *larger* than float32 ones (about 120 bytes of quantization parameters);
    the bound holds for both.

    Args:
        params: The parameter count (>= 0).

    Returns:
        The lower bound, in bytes.

    Raises:
        ValueError: If ``params`` is not an integer >= 0.

    """
    return check_positive_int("params", params, minimum=0) + TFLITE_FLOOR_BYTES


def _check_positive_float(name: str, value: Any, *, maximum: float | None = None) -> float | None:
    """Return ``None`` or ``value`` as a float in ``(0, maximum]``, else raise."""
    if value is None:
        return None
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
        and (maximum is None or value <= maximum)
    )
    if not ok:
        expected = "a positive finite number" if maximum is None else f"a number in (0, {maximum}]"
        raise ValueError(f"Received: {name}={value!r}; expected None or {expected}.")
    return float(value)


def _check_optional_positive_int(name: str, value: Any) -> int | None:
    """Return ``None`` or ``value`` as a positive ``int``, else raise."""
    return None if value is None else check_positive_int(name, value)


@dataclasses.dataclass(frozen=True)
class Constraints:
    """Hard limits every kept model must meet; ``None`` means no limit.

    A trial that breaks a limit fails with the reason (it is never
    "slightly" accepted): `check_before_training` rejects it from its
    parameter count before any training, `check_measured` after export.

    The constructor rejects limits no model can meet:

    * ``max_size_bytes`` below ``estimate_int8_bytes(1)``
      (`TFLITE_FLOOR_BYTES` + 1): not even a one-parameter model fits in it.

    ``max_params`` and ``max_size_bytes`` are both upper bounds, so together
    they never contradict each other (a smaller model meets both), and no
    check relates them. Since `estimate_int8_bytes` is a lower bound, a model
    within ``max_params`` whose estimate fits ``max_size_bytes`` can still
    break the size limit once exported; `check_measured` catches that.

    The device budgets (``max_flash_bytes``, ``max_ram_bytes``, ``max_macs``)
    are checked before training on the model's estimate (`estimate_model`:
    MACs exactly, flash and RAM as lower bounds), and after export on what
    the target measured (``flash_bytes``, ``ram_bytes``, ``macs``,
    ``npu_latency_ms``).

    Attributes:
        max_params: Largest Keras parameter count.
        max_size_bytes: Largest ``.tflite`` file size, in bytes.
        max_latency_ms: Largest median single-sample latency under LiteRT,
            in milliseconds.
        min_accuracy: Smallest validation accuracy, in (0, 1].
        max_flash_bytes: Largest flash the model takes on the target (the
            ``.tflite`` bytes, or Vela's flash figure on an NPU).
        max_ram_bytes: Largest peak RAM on the target (the TFLite Micro
            arena, or Vela's SRAM figure).
        max_macs: Largest multiply-accumulate count of one inference.
        max_npu_latency_ms: Largest NPU inference time Vela estimates, in
            milliseconds.

    """

    max_params: int | None = None
    max_size_bytes: int | None = None
    max_latency_ms: float | None = None
    min_accuracy: float | None = None
    max_flash_bytes: int | None = None
    max_ram_bytes: int | None = None
    max_macs: int | None = None
    max_npu_latency_ms: float | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "max_params", _check_optional_positive_int("max_params", self.max_params))
        set_(
            self,
            "max_size_bytes",
            _check_optional_positive_int("max_size_bytes", self.max_size_bytes),
        )
        set_(self, "max_latency_ms", _check_positive_float("max_latency_ms", self.max_latency_ms))
        set_(
            self,
            "min_accuracy",
            _check_positive_float("min_accuracy", self.min_accuracy, maximum=1.0),
        )
        for name in ("max_flash_bytes", "max_ram_bytes", "max_macs"):
            set_(self, name, _check_optional_positive_int(name, getattr(self, name)))
        set_(self, "max_npu_latency_ms",
             _check_positive_float("max_npu_latency_ms", self.max_npu_latency_ms))
        if self.max_size_bytes is not None and self.max_size_bytes < estimate_int8_bytes(1):
            raise ValueError(
                f"Received: max_size_bytes={self.max_size_bytes}; expected at least "
                f"{estimate_int8_bytes(1):,} bytes: every .tflite file takes at least "
                f"TFLITE_FLOOR_BYTES={TFLITE_FLOOR_BYTES:,} bytes beyond its weights, so no "
                "model can meet this limit."
            )

    @property
    def is_empty(self) -> bool:
        """Whether no limit is set."""
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))

    def check_before_training(self, params: int, estimate: Any = None, *,
                              dense: bool = True) -> str | None:
        """Return why a built, untrained model already breaks a limit, or ``None``.

        Checks ``params`` against ``max_params``, and
        ``estimate_int8_bytes(params)`` against ``max_size_bytes``. That
        estimate is a lower bound on the size of the smallest export (int8
        stores a weight in one byte, other modes in 2 or 4; every file adds
        at least `TFLITE_FLOOR_BYTES`), so rejecting on it never rejects a
        model that could fit. With an ``estimate`` (`estimate_model`), its
        ``flash_bytes`` and ``ram_bytes`` (lower bounds, or the figures of
        the untrained model's conversion: `measure_before_training`) and
        ``macs`` (exact) are checked against the device budgets.

        Args:
            params: The model's parameter count (``model.count_params()``).
            estimate: A `ModelEstimate` of the model in the mode it will be
                exported in, or None (the device budgets are then checked
                after export only).
            dense: False when the export may store pruned weights in TFLite's
                sparse encoding (`export_tflite`'s ``sparse``): the file can
                then be smaller than its weights, so the size and flash
                bounds are not checked (only after export).

        Returns:
            The reasons joined by ``"; "``, e.g.
            ``"params 120,394 > max_params 100,000"``, or ``None``.

        Raises:
            ValueError: If ``params`` is not an integer >= 0.

        """
        params = check_positive_int("params", params, minimum=0)
        reasons = []
        if self.max_params is not None and params > self.max_params:
            reasons.append(f"params {params:,} > max_params {self.max_params:,}")
        if self.max_size_bytes is not None and dense:
            smallest = estimate_int8_bytes(params)
            if smallest > self.max_size_bytes:
                reasons.append(
                    f"size_bytes >= {smallest:,} (params {params:,} + TFLITE_FLOOR_BYTES "
                    f"{TFLITE_FLOOR_BYTES:,}) > max_size_bytes {self.max_size_bytes:,}"
                )
        if estimate is not None:
            for key, limit, bound in (("flash_bytes", self.max_flash_bytes, ">="),
                                      ("ram_bytes", self.max_ram_bytes, ">="),
                                      ("macs", self.max_macs, "=")):
                value = getattr(estimate, key)
                if limit is None or value <= limit or (key == "flash_bytes" and not dense):
                    continue
                if getattr(estimate, "measured", False) and key != "macs":
                    how = f"measured on the untrained model's {estimate.mode} conversion"
                else:
                    how = f"estimated from the built model, {estimate.mode}"
                reasons.append(f"{key} {bound} {value:,} ({how}) > max_{key} {limit:,}")
        return "; ".join(reasons) or None

    def check_measured(self, metrics: Mapping[str, Any]) -> str | None:
        """Return why an exported model breaks a limit, or ``None``.

        Checks ``metrics["size_bytes"]`` against ``max_size_bytes``,
        ``metrics["latency_us"]`` against ``max_latency_ms * 1000`` and
        ``metrics["val_accuracy"]`` against ``min_accuracy``; values equal
        to a limit meet it. A metric that is NaN or infinite (a failed
        measurement) breaks its limit. Metrics without a limit are not read.

        Args:
            metrics: The trial's measurements, keyed by `BUILTIN_OBJECTIVES`
                names.

        Returns:
            The reasons joined by ``"; "``, e.g.
            ``"size_bytes 210,000 > max_size_bytes 200,000"``, or ``None``.

        Raises:
            ValueError: If a metric a limit needs is missing or not a number
                (a broken setup, not a bad trial).

        """
        if not isinstance(metrics, Mapping):
            raise ValueError(
                f"Received: metrics={metrics!r}; expected a dict with keys among "
                f"{list(_MEASURED_KEYS)}."
            )
        limits = {
            "size_bytes": self.max_size_bytes,
            "latency_us": None if self.max_latency_ms is None else self.max_latency_ms * 1000,
            "val_accuracy": self.min_accuracy,
            "flash_bytes": self.max_flash_bytes,
            "ram_bytes": self.max_ram_bytes,
            "macs": self.max_macs,
            "npu_latency_ms": self.max_npu_latency_ms,
        }
        values = {}
        for key, limit in limits.items():
            if limit is None:
                continue
            value = metrics.get(key)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(
                    f"Received: metrics={dict(metrics)!r}; expected a number under {key!r} "
                    "to check the constraints."
                )
            values[key] = float(value)
        reasons = []
        for key, value in values.items():
            if not math.isfinite(value):
                reasons.append(f"{key} is {value} (measurement failed)")
            elif key == "size_bytes" and value > self.max_size_bytes:
                reasons.append(f"size_bytes {value:,.0f} > max_size_bytes {self.max_size_bytes:,}")
            elif key == "latency_us" and value > self.max_latency_ms * 1000:
                reasons.append(
                    f"latency_us {value:,.1f} > max_latency_ms {self.max_latency_ms:g} "
                    f"({self.max_latency_ms * 1000:,.1f} us)"
                )
            elif key == "val_accuracy" and value < self.min_accuracy:
                reasons.append(f"val_accuracy {value:.4f} < min_accuracy {self.min_accuracy:g}")
            elif key == "npu_latency_ms" and value > limits[key]:
                reasons.append(f"npu_latency_ms {value:g} > max_npu_latency_ms {limits[key]:g}")
            elif key in ("flash_bytes", "ram_bytes", "macs") and value > limits[key]:
                reasons.append(f"{key} {value:,.0f} > max_{key} {limits[key]:,}")
        return "; ".join(reasons) or None

    def get_config(self) -> dict[str, int | float | None]:
        """Return the limits as a JSON-serializable dict (``None`` for no limit).

        Returns:
            One entry per field.

        """
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Constraints:
        """Rebuild constraints from `get_config` output (missing keys mean no limit).

        Args:
            config: A dict with keys among the field names.

        Returns:
            The constraints.

        Raises:
            ValueError: If ``config`` is not a dict, has unknown keys, or as
                the constructor.

        """
        fields = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(config, Mapping) or set(config) - set(fields):
            raise ValueError(
                f"Received: config={config!r}; expected a dict with keys among {fields}."
            )
        return cls(**config)
