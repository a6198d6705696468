"""Overhead of keras_autoopt's search vs raw keras-tuner, same space, same trials.

Both sides run RandomSearch with the same seed over the identical search
space (same hyperparameter names, ranges and registration order, so the
oracle samples the same values): ours through `make_tuner` with
`ConvNetHyperModel` and the per-trial progress lines; raw keras-tuner with a
plain build function written against ``tf.keras`` and a ``HyperModel.fit``
that does what our `OptimizerSpace.fit` does. Runs alternate (raw, ours,
raw, ours, ...) to spread machine noise evenly; the ratio is of medians.

Run: ``python benchmarks/overhead.py [--trials 8] [--repeats 3] [--epochs 3]``
Writes ``benchmarks/results/overhead.json``.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import tempfile
import time

from _results import RESULTS_DIR, write_results

import keras_autoopt  # noqa: F401  (sets up tf_keras and keras-tuner legacy mode)
from keras_autoopt._backend import kt, tf
from keras_autoopt.data import load_dataset
from keras_autoopt.search import ConvNetHyperModel, TrialLogger, make_tuner, schedule_factor

RESULTS = RESULTS_DIR / "overhead.json"


class RawHyperModel(kt.HyperModel):
    """The same space as ConvNetHyperModel's defaults, written with raw keras-tuner."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.input_shape = input_shape
        self.num_classes = num_classes

    def build(self, hp):
        keras = tf.keras
        inputs = keras.Input(shape=self.input_shape, name="input")
        n_blocks = hp.Int("conv_blocks", 1, 3)
        kernel_size = hp.Choice("kernel_size", [3, 5])
        pooling = hp.Choice("pooling", ["max", "avg"])
        use_bn = hp.Choice("conv_batch_norm", [False, True])
        activation = hp.Choice("conv_activation", ["relu", "relu6", "swish", "elu"])
        rate = hp.Float("conv_dropout", 0.0, 0.3, step=0.1)
        filters = [hp.Choice(f"filters_{i}", [16, 32, 64]) for i in range(n_blocks)]
        x = inputs
        pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
        for i, n in enumerate(filters):
            x = keras.layers.Conv2D(n, kernel_size, padding="same", use_bias=not use_bn,
                                    name=f"conv_{i}")(x)
            if use_bn:
                x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation(activation)(x)
            x = pool(2)(x)
            if rate > 0:
                x = keras.layers.Dropout(rate)(x)
        x = keras.layers.Flatten()(x)
        depth = hp.Int("head_layers", 0, 2)
        if depth:
            units = hp.Choice("head_units", [32, 64, 128])
            head_act = hp.Choice("head_activation", ["relu", "relu6", "swish", "elu"])
            head_bn = hp.Choice("head_batch_norm", [False, True])
            head_rate = hp.Float("head_dropout", 0.0, 0.5, step=0.1)
            for _ in range(depth):
                x = keras.layers.Dense(units, use_bias=not head_bn)(x)
                if head_bn:
                    x = keras.layers.BatchNormalization()(x)
                x = keras.layers.Activation(head_act)(x)
                if head_rate > 0:
                    x = keras.layers.Dropout(head_rate)(x)
        outputs = keras.layers.Dense(self.num_classes, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        hp.Choice("lr_schedule", ["constant", "cosine", "exponential", "step"])
        name = hp.Choice("optimizer", ["adam", "sgd", "rmsprop", "adagrad"])
        lr = hp.Float("learning_rate", 3e-4, 1e-2, sampling="log")
        with hp.conditional_scope("optimizer", ["sgd"]):
            momentum = hp.Float("momentum", 0.8, 0.95)
            nesterov = hp.Choice("nesterov", [False, True])
        clipping = hp.Choice("clipping", ["none", "clipnorm", "clipvalue"])
        clip = {"clipnorm": {"clipnorm": 1.0}, "clipvalue": {"clipvalue": 0.5}}.get(clipping, {})
        if name == "sgd":
            optimizer = keras.optimizers.SGD(lr, momentum=momentum, nesterov=bool(nesterov),
                                             **clip)
        else:
            cls = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
                   "adagrad": keras.optimizers.Adagrad}[name]
            optimizer = cls(lr, **clip)
        model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
        return model

    def fit(self, hp, model, *args, **kwargs):
        kwargs.setdefault("batch_size", hp.Choice("batch_size", [32, 64, 128]))
        epochs = kwargs["epochs"]
        schedule = hp.values["lr_schedule"]
        lr = hp.values["learning_rate"]
        callbacks = [tf.keras.callbacks.LearningRateScheduler(
            lambda epoch, _: lr * schedule_factor(schedule, epoch, epochs))]
        return model.fit(*args, callbacks=callbacks + kwargs.pop("callbacks", []), **kwargs)


def _search(kind: str, dataset, trials: int, epochs: int, seed: int) -> tuple[float, list]:
    with tempfile.TemporaryDirectory() as directory:
        tf.keras.utils.set_random_seed(seed)
        if kind == "ours":
            hypermodel = ConvNetHyperModel(dataset.input_shape, dataset.num_classes)
            tuner = make_tuner("random", hypermodel, directory=directory, max_trials=trials,
                               seed=seed, logger=TrialLogger(trials, io.StringIO()))
        else:
            tuner = kt.RandomSearch(RawHyperModel(dataset.input_shape, dataset.num_classes),
                                    objective="val_accuracy", max_trials=trials, seed=seed,
                                    directory=directory, project_name="search")
        start = time.perf_counter()
        tuner.search(dataset.x_train, dataset.y_train, epochs=epochs,
                     validation_data=(dataset.x_val, dataset.y_val), verbose=0)
        elapsed = time.perf_counter() - start
        values = [dict(t.hyperparameters.values)
                  for _, t in sorted(tuner.oracle.trials.items())]
        return elapsed, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dataset = load_dataset("digits", seed=args.seed)
    _search("raw", dataset, 1, 1, args.seed)  # warm-up: graph tracing, imports
    times: dict[str, list[float]] = {"raw": [], "ours": []}
    spaces: dict[str, list] = {}
    for _ in range(args.repeats):
        for kind in ("raw", "ours"):
            elapsed, values = _search(kind, dataset, args.trials, args.epochs, args.seed)
            times[kind].append(elapsed)
            spaces[kind] = values
    raw, ours = statistics.median(times["raw"]), statistics.median(times["ours"])
    identical = len(spaces["raw"]) == len(spaces["ours"]) and all(
        a.keys() == b.keys() and all(
            math.isclose(a[k], b[k]) if isinstance(a[k], float) else a[k] == b[k] for k in a)
        for a, b in zip(spaces["raw"], spaces["ours"], strict=True)
    )
    result = {
        "benchmark": "overhead",
        "what": "wall time of RandomSearch: keras_autoopt (make_tuner + ConvNetHyperModel + "
                "progress lines) vs raw keras-tuner with the same space",
        "dataset": dataset.summary(),
        "trials": args.trials, "epochs_per_trial": args.epochs, "repeats": args.repeats,
        "seed": args.seed,
        "identical_sampled_hyperparameters": identical,
        "raw_keras_tuner_s": [round(t, 3) for t in times["raw"]],
        "keras_autoopt_s": [round(t, 3) for t in times["ours"]],
        "raw_keras_tuner_median_s": round(raw, 3),
        "keras_autoopt_median_s": round(ours, 3),
        "ratio": round(ours / raw, 4),
        "goal_ratio_at_most": 1.05,
    }
    print(f"{'':24}{'raw keras-tuner':>18}{'keras_autoopt':>16}")
    for i, (a, b) in enumerate(zip(times["raw"], times["ours"], strict=True)):
        print(f"{'run ' + str(i + 1):24}{a:>17.2f}s{b:>15.2f}s")
    print(f"{'median':24}{raw:>17.2f}s{ours:>15.2f}s")
    print(f"ratio ours/raw = {ours / raw:.3f} (goal <= 1.05); "
          f"identical sampled hyperparameters: {identical}")
    write_results(RESULTS, result)


if __name__ == "__main__":
    main()
