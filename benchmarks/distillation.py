"""Distillation on digits: teacher, student alone and distilled student, 5 seeds, one run.

The teacher is the reference CNN (benchmarks/reference.py); the student a small
MLP (Flatten + Dense(16) + softmax, about 1.2 k parameters). The distiller uses
consistent augmentation (`Distiller(augmentation=GaussianNoise(0.1))`: teacher
and student see the same noisy batch, "function matching"). Temperature, alpha
and the number of epochs are found by a keras-tuner search
(`DistillationHyperModel`, decided on the validation split, seed 0). Every seed
then trains a teacher, the student alone, the student alone with the same
noise augmentation on its labels (to tell what the teacher adds from what the
noise adds), the distilled student without augmentation (teacher outputs
cached) and with it, all with the searched number of epochs. Test accuracies
give ``gap_closed = (distilled - student) / (teacher - student)`` (goal >= 0.30)
against both baselines. The distilled student is exported to int8 .tflite and
measured under LiteRT, and distillation's wall time is compared with training
the student alone.

Run: ``python benchmarks/distillation.py [--seeds 0 1 2 3 4] [--trials 8]``
Writes ``benchmarks/results/distillation.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _results import RESULTS_DIR, write_results
from reference import REFERENCE_BATCH_SIZE, REFERENCE_EPOCHS, reference_cnn

from keras_autoopt._backend import keras, kt
from keras_autoopt.data import load_dataset
from keras_autoopt.distill import DistillationHyperModel, Distiller
from keras_autoopt.export import export_tflite
from keras_autoopt.measure import measure_tflite

RESULTS = RESULTS_DIR / "distillation.json"
EPOCH_CHOICES = (100, 200, 300)
NOISE_STDDEV = 0.1
BATCH = 32


def student_model(input_shape, num_classes) -> keras.Model:
    """The fixed student: Flatten + Dense(16, relu) + softmax."""
    return keras.Sequential([
        keras.Input(input_shape), keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu", name="hidden"),
        keras.layers.Dense(num_classes, activation="softmax", name="output"),
    ], name="student")


class _Student(kt.HyperModel):
    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def build(self, hp):
        model = student_model(self.dataset.input_shape, self.dataset.num_classes)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                      ["accuracy"])
        return model

    def fit(self, hp, model, *args, **kwargs):
        kwargs["epochs"] = hp.Choice("epochs", EPOCH_CHOICES)
        kwargs.setdefault("batch_size", BATCH)
        return model.fit(*args, **kwargs)


def train_alone(dataset, seed, epochs, noise: bool):
    """The student on its labels alone, optionally with the same noise augmentation."""
    keras.utils.set_random_seed(seed)
    model = student_model(dataset.input_shape, dataset.num_classes)
    if noise:
        inputs = keras.Input(dataset.input_shape)
        trained = keras.Model(inputs, model(keras.layers.GaussianNoise(NOISE_STDDEV)(inputs)))
    else:
        trained = model
    trained.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                    ["accuracy"])
    start = time.perf_counter()
    trained.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=BATCH, verbose=0)
    return model, time.perf_counter() - start


def train_distilled(dataset, teacher, seed, epochs, temperature, alpha, noise: bool):
    """The distilled student: with consistent noise, or on cached teacher outputs."""
    keras.utils.set_random_seed(seed)
    augmentation = keras.layers.GaussianNoise(NOISE_STDDEV) if noise else None
    distiller = Distiller(teacher, student_model(dataset.input_shape, dataset.num_classes),
                          augmentation=augmentation)
    distiller.compile(keras.optimizers.Adam(1e-3), metrics=["accuracy"], alpha=alpha,
                      temperature=temperature)
    start = time.perf_counter()
    distiller.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=BATCH,
                  verbose=0, cache_teacher=not noise)
    return distiller.student, time.perf_counter() - start


def train_teacher(dataset, seed):
    keras.utils.set_random_seed(seed)
    teacher = reference_cnn(dataset.input_shape, dataset.num_classes)
    teacher.fit(dataset.x_train, dataset.y_train, epochs=REFERENCE_EPOCHS,
                batch_size=REFERENCE_BATCH_SIZE, verbose=0)
    return teacher


def accuracy(model, dataset) -> float:
    predictions = model.predict(dataset.x_test, verbose=0, batch_size=256)
    return float((predictions.argmax(-1) == dataset.y_test).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    dataset = load_dataset("digits")

    # 1. Search temperature and alpha on the validation split (seed 0's teacher).
    teacher = train_teacher(dataset, args.seeds[0])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tuner = kt.RandomSearch(
            DistillationHyperModel(teacher, _Student(dataset), temperature=(1.0, 10.0),
                                   alpha=(0.0, 0.5),
                                   augmentation=keras.layers.GaussianNoise(NOISE_STDDEV)),
            objective="val_accuracy", max_trials=args.trials, seed=args.seeds[0],
            directory=tmp, project_name="distill")
        tuner.search(dataset.x_train, dataset.y_train, verbose=0,
                     validation_data=(dataset.x_val, dataset.y_val))
        best = tuner.get_best_hyperparameters(1)[0].values
        trials = [{**t.hyperparameters.values, "val_accuracy": t.score}
                  for t in tuner.oracle.trials.values()]
    search_time = time.perf_counter() - start
    temperature, alpha = float(best["temperature"]), float(best["alpha"])
    epochs = int(best["epochs"])
    print(f"search ({args.trials} trials, {search_time:.0f}s): temperature={temperature:.2f} "
          f"alpha={alpha:.2f} epochs={epochs}")

    # 2. Every seed: teacher, two baselines, two distilled students, same epochs.
    def gap(value, base, top):
        return (value - base) / (top - base) if top > base else float("nan")

    runs = []
    for seed in args.seeds:
        teacher = teacher if seed == args.seeds[0] else train_teacher(dataset, seed)
        alone, alone_time = train_alone(dataset, seed, epochs, noise=False)
        alone_noise, _ = train_alone(dataset, seed, epochs, noise=True)
        cached, cached_time = train_distilled(dataset, teacher, seed, epochs, temperature,
                                              alpha, noise=False)
        distilled, distill_time = train_distilled(dataset, teacher, seed, epochs, temperature,
                                                  alpha, noise=True)
        t_acc, s_acc, n_acc = (accuracy(m, dataset) for m in (teacher, alone, alone_noise))
        c_acc, d_acc = accuracy(cached, dataset), accuracy(distilled, dataset)
        with tempfile.TemporaryDirectory() as tmp:
            exported = export_tflite(distilled, Path(tmp) / "student.tflite",
                                     mode="int8", representative_data=dataset.x_train)
            lite = measure_tflite(exported.path, dataset.x_test, dataset.y_test).to_dict()
        runs.append({"seed": seed, "teacher": t_acc, "student": s_acc,
                     "student_noise": n_acc, "distilled_cached": c_acc, "distilled": d_acc,
                     "gap_closed": gap(d_acc, s_acc, t_acc),
                     "gap_closed_vs_student_noise": gap(d_acc, n_acc, t_acc),
                     "gap_closed_cached": gap(c_acc, s_acc, t_acc),
                     "distilled_int8": lite,
                     "student_time_s": round(alone_time, 2),
                     "distill_cached_time_s": round(cached_time, 2),
                     "distill_time_s": round(distill_time, 2),
                     "time_ratio": round(distill_time / alone_time, 2),
                     "time_ratio_cached": round(cached_time / alone_time, 2)})
        print(f"seed {seed}: teacher {t_acc:.2%}  student {s_acc:.2%}  student+noise "
              f"{n_acc:.2%}  distilled(cached) {c_acc:.2%}  distilled(noise) {d_acc:.2%}  "
              f"gap closed {runs[-1]['gap_closed']:+.2f}  int8 {lite['accuracy']:.2%} "
              f"{lite['size_bytes']:,} B  time x{distill_time / alone_time:.2f}")

    def stats(key):
        values = [r[key] for r in runs]
        return {"mean": statistics.mean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0}

    summary = {k: stats(k) for k in (
        "teacher", "student", "student_noise", "distilled_cached", "distilled", "gap_closed",
        "gap_closed_vs_student_noise", "gap_closed_cached", "time_ratio", "time_ratio_cached")}
    print(f"\n{'':28}{'mean':>9}{'std':>9}")
    for key, value in summary.items():
        print(f"{key:28}{value['mean']:>9.4f}{value['std']:>9.4f}")
    print(f"gap closed {summary['gap_closed']['mean']:.2f} (goal >= 0.30); distillation costs "
          f"{summary['time_ratio']['mean']:.2f}x the student's training time")
    result = {
        "benchmark": "distillation",
        "teacher": "reference CNN (benchmarks/reference.py)",
        "student": "Flatten + Dense(16) + softmax",
        "augmentation": f"GaussianNoise({NOISE_STDDEV}) on teacher and student inputs",
        "dataset": dataset.summary(),
        "student_epochs": epochs, "teacher_epochs": REFERENCE_EPOCHS,
        "search": {"trials": trials,
                   "best": {"temperature": temperature, "alpha": alpha, "epochs": epochs},
                   "wall_time_s": round(search_time, 1), "decided_on": "validation split"},
        "runs": runs,
        "summary": summary,
        "goal_gap_closed": 0.30,
    }
    write_results(RESULTS, result)


if __name__ == "__main__":
    main()
