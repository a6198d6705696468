import numpy as np
import pytest

from keras_autoopt._backend import keras, kt
from keras_autoopt.search import ConvNetHyperModel, DenseHyperModel, OptimizerSpace


def _random_hp(hypermodel, seed):
    """Sample a full set of values the way an oracle does."""
    hp = kt.HyperParameters()
    hypermodel.build(hp)  # registers the space with defaults
    rng = np.random.default_rng(seed)
    values = {}
    for param in hp.space:
        values[param.name] = param.random_sample(int(rng.integers(1 << 30)))
    sampled = kt.HyperParameters()
    sampled.values.update(values)
    return sampled


@pytest.mark.parametrize("seed", range(6))
def test_convnet_builds_for_sampled_hyperparameters(seed):
    hypermodel = ConvNetHyperModel((16, 16, 3), 5)
    hp = _random_hp(hypermodel, seed)
    model = hypermodel.build(hp)
    assert model.output_shape == (None, 5)
    # Compiled with the sampled optimizer ("adam" -> Adam, "rmsprop" -> RMSprop, ...).
    assert type(model.optimizer).__name__.lower() == hp.values["optimizer"]
    n_conv = sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)
    assert n_conv == hp.values["conv_blocks"]
    probs = model.predict(np.zeros((2, 16, 16, 3), "float32"), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_convnet_accepts_height_width_inputs():
    model = ConvNetHyperModel((8, 8), 3).build(kt.HyperParameters())
    assert model.input_shape == (None, 8, 8)
    assert model.get_layer("add_channel").output_shape == (None, 8, 8, 1)


def test_convnet_hyperparameters_follow_the_constructor():
    hypermodel = ConvNetHyperModel((8, 8, 1), 10, blocks=(2, 2), filters=(8,),
                                   kernel_sizes=(3,), poolings=("avg",), batch_norm=(True,))
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [8, 8]
    assert any(isinstance(layer, keras.layers.AveragePooling2D) for layer in model.layers)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def test_pooling_below_one_pixel_fails_only_that_trial():
    hypermodel = ConvNetHyperModel((4, 4, 1), 3, blocks=(3, 3))
    with pytest.raises(kt.errors.FailedTrialError,
                       match=r"conv_blocks=3 cannot fit the 4x4 input: the 2x2 pooling "
                             r"of block 3 shrinks it below 1x1"):
        hypermodel.build(kt.HyperParameters())


def test_failed_architecture_fails_the_trial_not_the_search(tiny_images, tmp_path):
    x, y, xv, yv = tiny_images
    x, xv = x[:, :4, :4], xv[:, :4, :4]
    hypermodel = ConvNetHyperModel(
        (4, 4, 1), 3, blocks=(1, 3), filters=(4,), head_layers=(0, 0),
        optimizer_space=OptimizerSpace(epochs=(1, 1), batch_sizes=(32,)),
    )
    # Only vary the number of blocks: 1, 2 work, 3 cannot fit 4x4.
    hp = kt.HyperParameters()
    hp.Int("conv_blocks", 1, 3)
    tuner = kt.GridSearch(hypermodel, objective="val_accuracy", max_trials=3,
                          directory=tmp_path, project_name="grid", hyperparameters=hp,
                          tune_new_entries=False)
    tuner.search(x, y, validation_data=(xv, yv), verbose=0)
    statuses = {t.hyperparameters.values["conv_blocks"]: t.status
                for t in tuner.oracle.trials.values()}
    assert statuses == {1: "COMPLETED", 2: "COMPLETED", 3: "FAILED"}
    failed = [t for t in tuner.oracle.trials.values() if t.status == "FAILED"][0]
    assert "cannot fit the 4x4 input" in failed.message


@pytest.mark.parametrize("seed", range(4))
def test_dense_builds_for_sampled_hyperparameters(seed):
    hypermodel = DenseHyperModel((20,), 4)
    hp = _random_hp(hypermodel, seed)
    model = hypermodel.build(hp)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == hp.values["dense_layers"] + 1
    assert model.output_shape == (None, 4)


def test_dense_flattens_images():
    model = DenseHyperModel((8, 8, 1), 10).build(kt.HyperParameters())
    assert model.get_layer("flatten").output_shape == (None, 64)


@pytest.mark.parametrize("cls", [ConvNetHyperModel, DenseHyperModel])
def test_config_round_trip(cls):
    hypermodel = cls((8, 8, 1), 10, optimizer_space=OptimizerSpace(epochs=(1, 2)),
                     name="mine")
    again = cls.from_config(hypermodel.get_config())
    assert again.get_config() == hypermodel.get_config()
    assert again.optimizer_space.epochs == (1, 2)
    assert again.name == "mine"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": (8, 0, 1)}, r"Received: input_shape=\(8, 0, 1\); expected a non-empty"),
        ({"input_shape": (64,)}, r"Received: input_shape=\(64,\); expected \(height, width\)"),
        ({"num_classes": 1}, r"Received: num_classes=1; expected an integer >= 2"),
        ({"num_classes": 0}, r"Received: num_classes=0; expected a positive integer"),
        ({"blocks": (0, 2)}, r"Received: blocks=\(0, 2\); expected a pair"),
        ({"filters": (16, -1)}, r"Received: filters=-1; expected a positive integer"),
        ({"poolings": ("min",)}, r"Received: poolings=\('min',\)"),
        ({"dropout": (0.0, 1.0)}, r"Received: dropout=\(0.0, 1.0\)"),
        ({"activations": ("tanh2",)}, r"Received: activations=\('tanh2',\)"),
        ({"optimizer_space": "adam"}, r"Received: optimizer_space='adam'; expected an Optim"),
    ],
)
def test_convnet_bad_arguments_are_named(kwargs, message):
    args = {"input_shape": (8, 8, 1), "num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        ConvNetHyperModel(args.pop("input_shape"), args.pop("num_classes"), **args)


def test_dense_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"Received: units=0; expected a positive integer"):
        DenseHyperModel((4,), 2, units=(0,))
    with pytest.raises(ValueError, match=r"Received: layers=\(0, 1\)"):
        DenseHyperModel((4,), 2, layers=(0, 1))


def test_model_name_is_a_valid_tensorflow_scope():
    from keras_autoopt.search._base import model_name

    assert model_name("_StopsAtThirdFit") == "StopsAtThirdFit"
    assert model_name("my model!") == "my_model_"
    assert model_name("___") == "model"

    class _Private(DenseHyperModel):
        pass

    model = _Private((4,), 2).build(kt.HyperParameters())
    assert model.name == "Private"
