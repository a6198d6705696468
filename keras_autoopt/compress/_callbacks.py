"""The callback that reports a compression stage inside ``model.fit``."""

from __future__ import annotations

import warnings
from typing import Any

from keras_autoopt._backend import keras, tf
from keras_autoopt.compress._stats import kernel_stats, overall_sparsity

#: Achieved sparsity may fall short of the target by this much before a run says so.
SPARSITY_TOLERANCE = 0.01


class CompressionLogger(keras.callbacks.Callback):
    """Logs a stage's progress into the fit history and, optionally, TensorBoard.

    After every epoch it adds ``compression_sparsity`` (zeros over all
    kernels) and ``compression_max_unique_weights`` to the logs, so they land
    in ``History`` next to the loss. At the end of training it checks the
    step's promise: a pruning target missed by more than
    `SPARSITY_TOLERANCE`, or a kernel with more distinct values than the
    requested clusters, emits a ``UserWarning`` naming the layers, and
    `target_reached` / `problems` tell the caller.

    Args:
        stage: The stage name (e.g. ``"prune"``).
        target: The step's `target()` dict.
        log_dir: TensorBoard folder for the scalars; None writes none.
    """

    def __init__(self, stage: str, target: dict[str, Any] | None = None,
                 log_dir: str | None = None):
        super().__init__()
        self.stage = stage
        self.target = dict(target or {})
        self.log_dir = log_dir
        self.target_reached: bool | None = None
        self.problems: list[str] = []
        self._writer = None

    def on_train_begin(self, logs=None):
        if self.log_dir is not None:
            self._writer = tf.summary.create_file_writer(self.log_dir)

    def _stats(self):
        # A Distiller trains its student: report the student, not the teacher.
        return kernel_stats(getattr(self.model, "student", self.model))

    def on_epoch_end(self, epoch, logs=None):
        stats = self._stats()
        sparsity = overall_sparsity(stats)
        unique = max((entry["unique_weights"] for entry in stats.values()), default=0)
        if logs is not None:
            logs["compression_sparsity"] = sparsity
            logs["compression_max_unique_weights"] = float(unique)
        if self._writer is not None:
            with self._writer.as_default():
                tf.summary.scalar(f"{self.stage}/sparsity", sparsity, step=epoch)
                tf.summary.scalar(f"{self.stage}/max_unique_weights", unique, step=epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
        self.problems = check_target(self.target, self._stats())
        self.target_reached = not self.problems
        if self.problems:
            warnings.warn(
                f"Compression stage '{self.stage}' missed its target: "
                + "; ".join(self.problems), stacklevel=2)


def check_target(target: dict[str, Any], stats: dict[str, dict[str, Any]]) -> list[str]:
    """Compare what a step promised with what the kernels show.

    Args:
        target: A step's `target()` dict.
        stats: `kernel_stats` of the model after the stage.

    Returns:
        One sentence per layer that missed; empty when every target was met.
    """
    problems = []
    if "sparsity" in target:
        m_by_n = target.get("m_by_n")
        per_layer = target.get("layer_sparsity") or {}
        for name, entry in stats.items():
            wanted = (m_by_n[0] / m_by_n[1]) if m_by_n else per_layer.get(name, target["sparsity"])
            if name in target.get("skipped", ()) or wanted == 0 or name in target.get(
                    "unwrapped", ()):
                continue
            if entry["sparsity"] < wanted - SPARSITY_TOLERANCE:
                hint = (" (masks update every `frequency` steps from `begin_step`: a fit "
                        "shorter than that never prunes)") if entry["sparsity"] == 0 else ""
                problems.append(
                    f"layer '{name}' reached sparsity {entry['sparsity']:.3f}, "
                    f"target {wanted:.3f}{hint}")
    if "n_clusters" in target:
        per_layer = target.get("layer_clusters") or {}
        for name, entry in stats.items():
            if name in target.get("unwrapped", ()):
                continue
            wanted = per_layer.get(name, target["n_clusters"])
            # a sparsity-preserving clustering keeps zero as an extra value
            if entry["unique_weights"] > wanted + 1:
                problems.append(
                    f"layer '{name}' has {entry['unique_weights']} distinct weights, "
                    f"requested {wanted} clusters")
    return problems
