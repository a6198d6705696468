"""`CompressionPlan`: an ordered list of steps, as callbacks for ``fit`` or as a staged run."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_autoopt._backend import keras
from keras_autoopt.compress._callbacks import CompressionLogger
from keras_autoopt.compress._clustering import ClusteringStep
from keras_autoopt.compress._fold import fold_for_qat
from keras_autoopt.compress._pruning import PruningStep
from keras_autoopt.compress._qat import QATStep
from keras_autoopt.compress._stats import kernel_stats, overall_sparsity
from keras_autoopt.compress._steps import CompressionStep
from keras_autoopt.compress._structured import StructuredPruningStep
from keras_autoopt.export import EXPORT_MODES, export_tflite
from keras_autoopt.load import as_tf_keras
from keras_autoopt.measure import measure_tflite

#: Step classes by config name, for `CompressionPlan.from_config`.
STEP_TYPES: dict[str, type[CompressionStep]] = {
    "structured": StructuredPruningStep,
    "prune": PruningStep,
    "cluster": ClusteringStep,
    "qat": QATStep,
}
_ORDER = {"structured": -1, "prune": 0, "cluster": 1, "qat": 2}


@dataclass
class Stage:
    """One measured stage of `CompressionPlan.run`.

    Attributes:
        name: Stage name (``float32``, ``ptq_int8``, ``prune``, ...).
        mode: TFLite export mode of its file.
        path: The ``.tflite`` file.
        metrics: LiteRT figures on the test split (``measure_tflite``).
        val_accuracy: Keras accuracy on the validation split (decisions use it).
        layers: `kernel_stats` of the stage's model.
        wall_time_s: Time spent fine-tuning and exporting this stage.
        target_reached: Whether the step met its target (None: no target).
        problems: What missed, per layer.
        history: The fine-tuning history (``History.history``).
        model: The stage's Keras model (stripped; QAT models as they are).
        notes: What the stage did not do as asked (e.g. QAT layers left
            float, with the reason).
    """

    name: str
    mode: str
    path: Path
    metrics: dict[str, Any]
    val_accuracy: float | None
    layers: dict[str, dict[str, Any]]
    wall_time_s: float
    target_reached: bool | None = None
    problems: list[str] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)
    model: keras.Model | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)

    def record(self, output_dir: Path, float32_size: int) -> dict[str, Any]:
        """The stage as a report row (see ``keras_autoopt.report``)."""
        return {
            "stage": self.name,
            "mode": self.mode,
            "path": self.path.relative_to(output_dir).as_posix()
            if self.path.is_relative_to(output_dir) else str(self.path),
            "sparsity": overall_sparsity(self.layers),
            "layer_sparsity": {k: v["sparsity"] for k, v in self.layers.items()},
            "unique_weights": {k: v["unique_weights"] for k, v in self.layers.items()},
            "val_accuracy": self.val_accuracy,
            "size_ratio": float32_size / self.metrics["size_bytes"],
            "gzip_ratio": float32_size / self.metrics["gzip_bytes"],
            "wall_time_s": round(self.wall_time_s, 3),
            "target_reached": self.target_reached,
            "problems": list(self.problems),
            "notes": list(self.notes),
            **self.metrics,
        }


@dataclass
class FineTuned:
    """One step fine-tuned by `CompressionPlan.fine_tune`.

    Attributes:
        model: The stripped, compiled model (QAT models as they are).
        target_reached: Whether the step met its target (None: no target).
        problems: What missed, per layer.
        history: The fine-tuning history (``History.history``).
        notes: What the step did not do as asked (QAT layers left float).
    """

    model: keras.Model = field(repr=False)
    target_reached: bool | None
    problems: list[str]
    history: dict[str, list[float]]
    notes: list[str]


class CompressionPlan:
    """An ordered list of compression steps and how to fine-tune them.

    Steps run in the order pruning, clustering, quantization-aware training
    (each at most once); TF-MOT's collaborative schemes depend on that order.

    Use it three ways:

    * in your own ``model.fit``: ``wrapped = plan.apply(model)``, compile,
      ``wrapped.fit(..., callbacks=plan.callbacks())``, ``plan.strip(wrapped)``
      (one stage at a time: ``stage=1`` for the next);
    * in a keras-tuner search: `CompressionHyperModel`;
    * staged, measured end to end: `run`.

    Args:
        steps: The steps.
        export_mode: TFLite mode of the non-QAT stages (QAT stages are always
            exported as ``int8``).
        batch_size: Fine-tuning batch size.
        learning_rate: Fine-tuning learning rate (Adam) of steps that set none.
        loss: Loss used to compile the wrapped models.

    Raises:
        ValueError: For steps out of order, repeated, or bad arguments.
    """

    def __init__(self, steps: Sequence[CompressionStep], *, export_mode: str = "int8",
                 batch_size: int = 32, learning_rate: float = 1e-4,
                 loss: str = "sparse_categorical_crossentropy"):
        steps = list(steps)
        for step in steps:
            if not isinstance(step, CompressionStep):
                raise ValueError(
                    f"Received: steps containing {step!r}; expected CompressionStep instances "
                    "(PruningStep, ClusteringStep, QATStep)."
                )
        kinds = [step.kind for step in steps]
        if len(set(kinds)) != len(kinds) or kinds != sorted(kinds, key=_ORDER.__getitem__):
            raise ValueError(
                f"Received: steps of kinds {kinds}; expected each at most once, in the order "
                "structured, prune, cluster, qat."
            )
        if export_mode not in EXPORT_MODES:
            raise ValueError(
                f"Received: export_mode={export_mode!r}; expected one of {EXPORT_MODES}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Received: batch_size={batch_size!r}; expected a positive integer.")
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or \
                not learning_rate > 0:
            raise ValueError(
                f"Received: learning_rate={learning_rate!r}; expected a positive float.")
        self.steps = steps
        self.export_mode = export_mode
        self.batch_size = batch_size
        self.learning_rate = float(learning_rate)
        self.loss = loss

    # -- one stage inside a user's fit -----------------------------------------------------
    def _step(self, stage: int) -> CompressionStep:
        if isinstance(stage, bool) or not isinstance(stage, int) or not \
                0 <= stage < len(self.steps):
            raise ValueError(
                f"Received: stage={stage!r}; expected an index below {len(self.steps)}.")
        return self.steps[stage]

    def apply(self, model: keras.Model, stage: int = 0) -> keras.Model:
        """Wrap ``model`` for one stage (not compiled).

        Args:
            model: A float Sequential or functional model (stripped of any
                earlier stage's wrappers).
            stage: Index of the step.

        Returns:
            The wrapped model.
        """
        model, _ = as_tf_keras(model, arg="model")  # a Keras 3 model is converted exactly
        step = self._step(stage)
        if isinstance(step, QATStep):
            return step.apply(model, earlier_kinds=[s.kind for s in self.steps[:stage]])
        return step.apply(model)

    def callbacks(self, stage: int = 0, *, log_dir: str | None = None
                  ) -> list[keras.callbacks.Callback]:
        """The callbacks that drive one stage in ``model.fit``.

        Args:
            stage: Index of the step.
            log_dir: TensorBoard folder for the stage's scalars, optional.

        Returns:
            The step's own callbacks (e.g. ``UpdatePruningStep``) and a
            `CompressionLogger` that records sparsity / distinct weights in
            the history and checks the target at the end.
        """
        step = self._step(stage)
        return [*step.callbacks(), CompressionLogger(step.kind, step.target(), log_dir)]

    def strip(self, model: keras.Model, stage: int = 0) -> keras.Model:
        """Remove one stage's wrappers.

        Args:
            model: The trained wrapped model.
            stage: Index of the step.

        Returns:
            The stripped model.
        """
        return self._step(stage).strip(model)

    # -- the staged pipeline ---------------------------------------------------------------
    def _compile(self, model: keras.Model, learning_rate: float | None) -> None:
        model.compile(keras.optimizers.Adam(learning_rate or self.learning_rate),
                      loss=self.loss, metrics=["accuracy"])

    def _measure(self, name: str, model: keras.Model, mode: str, dataset, output_dir: Path,
                 started: float, **extra: Any) -> Stage:
        exported = export_tflite(model, output_dir / f"{name}.tflite", mode=mode,
                                 representative_data=dataset.x_train)
        metrics = measure_tflite(exported.path, dataset.x_test, dataset.y_test).to_dict()
        val = model.evaluate(dataset.x_val, dataset.y_val, verbose=0,
                             batch_size=256, return_dict=True) if model.compiled_loss else None
        return Stage(
            name=name, mode=mode, path=Path(exported.path), metrics=metrics,
            val_accuracy=None if val is None else float(val["accuracy"]),
            layers=kernel_stats(model), wall_time_s=time.perf_counter() - started,
            model=model, **extra,
        )

    def run(self, model: keras.Model, dataset, output_dir: str | Path, *,
            seed: int = 0, verbose: int = 0) -> list[Stage]:
        """Run every stage: baseline, then each step fine-tuned, stripped, exported, measured.

        Stages: ``float32`` (the model as given), ``ptq_<export_mode>`` (the
        baseline post-training quantized), then one per step, named by its
        kind (``prune``, ``cluster``, ``qat``). Every stage's ``.tflite`` is
        measured under LiteRT on the test split; fine-tuning uses the train
        split and reports validation accuracy.

        Args:
            model: The trained float model (not modified).
            dataset: A ``keras_autoopt.data.Dataset``.
            output_dir: Folder for the ``.tflite`` files.
            seed: Seed of the fine-tuning.
            verbose: ``model.fit`` verbosity.

        Returns:
            The measured stages, in order.
        """
        model, _ = as_tf_keras(model, arg="model")  # a Keras 3 model is converted exactly
        keras.utils.set_random_seed(seed)
        stages = self.baseline(model, dataset, output_dir)
        current = stages[0].model
        for index, step in enumerate(self.steps):
            stage = self.run_step(current, step, dataset, output_dir,
                                  earlier_kinds=[s.kind for s in self.steps[:index]],
                                  verbose=verbose)
            stages.append(stage)
            current = stage.model
        return stages

    def baseline(self, model: keras.Model, dataset, output_dir: str | Path) -> list[Stage]:
        """Measure ``model`` as ``float32`` and, unless float32, as ``ptq_<export_mode>``.

        Args:
            model: The trained float model (not modified).
            dataset: A ``keras_autoopt.data.Dataset``.
            output_dir: Folder for the ``.tflite`` files.

        Returns:
            One or two stages; their ``model`` is a compiled private copy.
        """
        model, _ = as_tf_keras(model, arg="model")  # a Keras 3 model is converted exactly
        from keras_autoopt.compress._steps import clone_with_weights

        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        current = clone_with_weights(model)
        self._compile(current, None)
        started = time.perf_counter()
        stages = [self._measure("float32", current, "float32", dataset, output_dir, started)]
        if self.export_mode != "float32":
            started = time.perf_counter()
            stages.append(self._measure(f"ptq_{self.export_mode}", current, self.export_mode,
                                        dataset, output_dir, started))
        return stages

    def fine_tune(self, model: keras.Model, step: CompressionStep, x, y, *,
                  validation_data=None, earlier_kinds: Sequence[str] = (),
                  callbacks: Sequence[keras.callbacks.Callback] = (),
                  verbose: int = 0) -> FineTuned:
        """Wrap ``model`` for ``step``, fine-tune it on ``(x, y)`` and strip it.

        A polynomial `PruningStep` without ``end_step`` is resolved to this
        stage's length. A `ClusteringStep` clusters the model with its batch
        norms folded into the preceding Conv / Dense (`fold_for_qat`, same
        function): a later QAT stage folds them anyway, and folding scales
        each output channel, so clusters made before the fold would become
        distinct values per channel (measured: 27 % more gzip bytes after
        PCQAT on a digits ConvNet with batch norms).

        Args:
            model: The float model of the previous stage (not modified).
            step: The step.
            x: Training inputs.
            y: Training labels.
            validation_data: ``(x_val, y_val)`` for ``fit``, or None.
            earlier_kinds: Kinds of the steps already applied to ``model``
                (QAT's ``auto`` scheme reads them).
            callbacks: More ``fit`` callbacks (after the step's own).
            verbose: ``model.fit`` verbosity.

        Returns:
            The stripped, compiled model with the step's target check.
        """
        if isinstance(step, PruningStep):
            step = step.resolve(-(-len(x) // self.batch_size))
        if isinstance(step, ClusteringStep):
            model = fold_for_qat(model, skip_layers=step.layer_names(), fuse_relu=False,
                                 split=False).model
        if isinstance(step, QATStep):
            wrapped = step.apply(model, earlier_kinds=list(earlier_kinds))
        elif isinstance(step, StructuredPruningStep):
            wrapped = step.apply(model, data=(x, y))  # a smaller model, no wrappers
        else:
            wrapped = step.apply(model)
        self._compile(wrapped, step.learning_rate)
        target = {} if isinstance(step, StructuredPruningStep) else \
            {**step.target(), "unwrapped": _unwrapped(wrapped, step)}
        logger = CompressionLogger(step.kind, target)
        history = None
        if step.epochs:
            history = wrapped.fit(x, y, validation_data=validation_data, epochs=step.epochs,
                                  batch_size=self.batch_size, verbose=verbose,
                                  callbacks=[*step.callbacks(), logger, *callbacks])
        else:
            logger.set_model(wrapped)
            logger.on_train_end()
        stripped = step.strip(wrapped)
        if stripped is not wrapped:
            self._compile(stripped, step.learning_rate)
        notes = [f"layer '{layer}' left float: {reason}"
                 for layer, reason in step.left_float.items()] if isinstance(step, QATStep) else []
        return FineTuned(model=stripped, target_reached=logger.target_reached,
                         problems=list(logger.problems),
                         history={} if history is None else dict(history.history), notes=notes)

    def run_step(self, model: keras.Model, step: CompressionStep, dataset,
                 output_dir: str | Path, *, name: str | None = None,
                 earlier_kinds: Sequence[str] = (), verbose: int = 0) -> Stage:
        """Fine-tune one step on ``model`` (`fine_tune`), then export and measure it.

        Args:
            model: The float model of the previous stage (not modified).
            step: The step.
            dataset: A ``keras_autoopt.data.Dataset``.
            output_dir: Folder for the ``.tflite`` file.
            name: Stage (and file) name; None means the step's kind.
            earlier_kinds: Kinds of the steps already applied to ``model``.
            verbose: ``model.fit`` verbosity.

        Returns:
            The measured stage; its ``model`` is the stripped model.
        """
        model, _ = as_tf_keras(model, arg="model")  # a Keras 3 model is converted exactly
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        tuned = self.fine_tune(model, step, dataset.x_train, dataset.y_train,
                               validation_data=(dataset.x_val, dataset.y_val),
                               earlier_kinds=earlier_kinds, verbose=verbose)
        mode = "int8" if isinstance(step, QATStep) else self.export_mode
        return self._measure(
            name or step.kind, tuned.model, mode, dataset, output_dir, started,
            target_reached=tuned.target_reached, problems=tuned.problems,
            history=tuned.history, notes=tuned.notes,
        )

    # -- serialization ---------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Return the plan as JSON-friendly values."""
        return {
            "steps": [{"type": step.kind, "config": step.get_config()} for step in self.steps],
            "export_mode": self.export_mode,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "loss": self.loss,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CompressionPlan:
        """Rebuild a plan from `get_config` output.

        Raises:
            ValueError: For an unknown step type.
        """
        config = dict(config)
        steps = []
        for entry in config.pop("steps", []):
            kind = entry.get("type")
            if kind not in STEP_TYPES:
                raise ValueError(
                    f"Received: step type {kind!r}; expected one of {tuple(STEP_TYPES)}.")
            steps.append(STEP_TYPES[kind].from_config(entry.get("config", {})))
        return cls(steps, **config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompressionPlan) and other.get_config() == self.get_config()

    def __repr__(self) -> str:
        return f"CompressionPlan({self.get_config()!r})"


def _unwrapped(wrapped: keras.Model, step: CompressionStep) -> list[str]:
    """Names of kernel layers this step left unwrapped (skipped, unsupported, target 0)."""
    names = []
    for layer in wrapped.layers:
        inner = getattr(layer, "layer", None)
        if inner is None and hasattr(layer, "kernel"):
            names.append(layer.name)
        elif isinstance(step, QATStep) and inner is not None and inner.name in step.skip_layers:
            names.append(inner.name)
    if isinstance(step, PruningStep):
        names += [name for name, value in step.layer_sparsity.items() if value == 0]
    return names
