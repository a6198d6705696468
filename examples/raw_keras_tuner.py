"""Our HyperModel inside a plain keras-tuner search, with your own callbacks.

keras_autoopt's HyperModels are ordinary ``keras_tuner.HyperModel`` objects:
any keras-tuner tuner (or your own ``Tuner`` subclass) searches them, and
callbacks passed to ``tuner.search`` reach every trial's ``model.fit``.

Run: ``python examples/raw_keras_tuner.py [--output runs/raw_keras_tuner]``
"""

import argparse  # noqa: I001  (keras_autoopt must be imported before keras_tuner)

import keras_autoopt as ka  # import first: keras-tuner then runs on tf_keras
import keras_tuner
import tensorflow as tf

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--output", default="runs/raw_keras_tuner")
parser.add_argument("--trials", type=int, default=3)
args = parser.parse_args()

data = ka.load_dataset("digits")
hypermodel = ka.ConvNetHyperModel(
    data.input_shape, data.num_classes,
    optimizer_space=ka.OptimizerSpace(optimizers=("adam",), learning_rate=(1e-3, 1e-2),
                                      epochs=(10, 20)),
)


class LoggingTuner(keras_tuner.RandomSearch):
    """A user's own Tuner subclass: prints each trial's score."""

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        print(f"trial {trial.trial_id}: {trial.status} score={trial.score}")


tuner = LoggingTuner(hypermodel, objective="val_accuracy", max_trials=args.trials, seed=0,
                     directory=args.output, project_name="search", overwrite=True)
tuner.search(
    data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), verbose=0,
    callbacks=[tf.keras.callbacks.TerminateOnNaN()],
)
best = tuner.get_best_models(1)[0]
print("best test accuracy (Keras):", best.evaluate(data.x_test, data.y_test, verbose=0)[1])

exported = ka.export_tflite(best, f"{args.output}/best_int8.tflite", mode="int8",
                            representative_data=data.x_train)
metrics = ka.measure_tflite(exported.path, data.x_test, data.y_test)
print("int8 under LiteRT:", metrics.to_dict())
