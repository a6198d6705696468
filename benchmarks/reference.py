"""The reference CNN of shared/STACK.md, defined once for every benchmark.

2 x Conv2D(32, 3x3, same, ReLU) + MaxPool(2) + Dense(128) + softmax: 76,522
parameters on 8x8x1 digits. It is the hand-made baseline the product's
searched and compressed models are compared with.
"""

from __future__ import annotations

from keras_autoopt._backend import keras

REFERENCE_EPOCHS = 20
REFERENCE_BATCH_SIZE = 32
REFERENCE_LEARNING_RATE = 1e-3


def reference_cnn(input_shape=(8, 8, 1), num_classes: int = 10) -> keras.Model:
    """Build and compile the reference CNN (Adam 1e-3, sparse cross-entropy)."""
    model = keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ], name="reference_cnn")
    model.compile(keras.optimizers.Adam(REFERENCE_LEARNING_RATE),
                  "sparse_categorical_crossentropy", ["accuracy"])
    return model


def train_reference(dataset, *, seed: int = 0) -> keras.Model:
    """Train the reference CNN on train + validation (as the pipeline's refit does)."""
    import numpy as np

    keras.utils.set_random_seed(seed)
    model = reference_cnn(dataset.input_shape, dataset.num_classes)
    model.fit(np.concatenate([dataset.x_train, dataset.x_val]),
              np.concatenate([dataset.y_train, dataset.y_val]),
              epochs=REFERENCE_EPOCHS, batch_size=REFERENCE_BATCH_SIZE, verbose=0)
    return model
