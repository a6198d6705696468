"""Quickstart: search, export and measure on your own NumPy data in a few lines.

Run: ``python examples/quickstart.py [--output runs/quickstart] [--trials 4]``
"""

import argparse

import keras_autoopt as ka  # import first: it sets up tf_keras for TF-MOT and keras-tuner

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--output", default="runs/quickstart")
parser.add_argument("--trials", type=int, default=4)
args = parser.parse_args()

# Your data: any (N, H, W, C) float array and integer labels. Here, digits via scikit-learn.
from sklearn.datasets import load_digits  # noqa: E402

digits = load_digits()
x = (digits.images / 16.0).astype("float32")[..., None]
y = digits.target

dataset = ka.from_arrays(x, y, name="my-digits", seed=0)  # stratified train/val/test split
result = ka.run_pipeline(
    dataset,
    args.output,
    hypermodel="convnet",
    tuner="bayesian",
    trials=args.trials,
    epochs=(5, 15),
    export_modes=["float32", "int8"],
    overwrite=True,
)
for model in result.report["models"]:
    print(f"{model['name']}: {model['accuracy']:.2%} in {model['gzip_bytes']:,} gzip bytes")
