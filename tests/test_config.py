import pytest

from keras_autoopt.config import ConfigError, PipelineConfig, load_config, make_config
from keras_autoopt.data import DatasetError


def _write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_full_config_loads(tmp_path):
    path = _write(tmp_path, """
dataset: {source: digits, val_fraction: 0.2, test_fraction: 0.1}
hypermodel: dense
tuner: bayesian
trials: 4
epochs: [2, 6]
export_modes: [float32, int8]
seed: 3
refit: false
""")
    config = load_config(path)
    assert config.dataset.source == "digits"
    assert config.dataset.val_fraction == 0.2
    assert (config.hypermodel, config.tuner, config.trials) == ("dense", "bayesian", 4)
    assert config.epochs == (2, 6)
    assert config.export_modes == ("float32", "int8")
    assert config.seed == 3 and config.refit is False


def test_defaults_and_shorthands(tmp_path):
    config = load_config(_write(tmp_path, "dataset: digits\nepochs: 5\n"))
    assert config.epochs == (5, 5)
    assert config.dataset.source == "digits"
    assert config.export_modes == ("float32", "dynamic", "float16", "int8")
    assert load_config(_write(tmp_path, "", "empty.yaml")) == PipelineConfig()


def test_relative_dataset_path_is_resolved_against_the_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.npz").write_bytes(b"")
    config = load_config(_write(tmp_path, "dataset: data/d.npz\n"))
    assert config.dataset.source == str((tmp_path / "data" / "d.npz").resolve())


def test_config_round_trips_through_json():
    config = PipelineConfig(trials=3, epochs=(1, 2), export_modes=("int8",))
    assert PipelineConfig.model_validate_json(config.model_dump_json()) == config


def test_malformed_yaml_names_the_line(tmp_path):
    path = _write(tmp_path, "tuner: random\ntrials: [1, 2\nseed: 0\n")
    with pytest.raises(ConfigError, match=r"run.yaml, line 3, column 5: malformed YAML"):
        load_config(path)


def test_unknown_key_is_named_with_its_line(tmp_path):
    path = _write(tmp_path, "tuner: random\ntrails: 5\n")
    with pytest.raises(ConfigError,
                       match=r"run.yaml, line 2: unknown key 'trails' \(Received: trails=5\)"):
        load_config(path)


def test_wrong_type_names_key_and_value(tmp_path):
    path = _write(tmp_path, "trials: ten\n")
    with pytest.raises(ConfigError, match=r"line 1: Received: trials='ten'; Input should be a "
                                          r"valid integer"):
        load_config(path)


def test_nested_wrong_value_names_the_nested_key(tmp_path):
    path = _write(tmp_path, "dataset:\n  source: digits\n  val_fraction: 1.5\n")
    with pytest.raises(ConfigError, match=r"line 3: Received: dataset.val_fraction=1.5; "
                                          r"Input should be less than 1"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tuner: annealing\n", r"Received: tuner='annealing'; expected one of \('random'"),
        ("hypermodel: resnet\n", r"Received: hypermodel='resnet'; expected one of"),
        ("epochs: [5, 2]\n", r"Received: epochs=\[5, 2\]; expected 1 <= low <= high"),
        ("export_modes: [int4]\n", r"expected modes among \('float32'.*got 'int4'"),
        ("export_modes: [int8, int8]\n", r"expected each export mode once"),
        ("trials: 0\n", r"Received: trials=0; Input should be greater than or equal to 1"),
        ("- a\n- b\n", r"Received: a list at the top level; expected a mapping"),
    ],
)
def test_bad_values(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"Received: config='.*nope.yaml'; expected an "
                                          r"existing YAML file"):
        load_config(tmp_path / "nope.yaml")


def test_make_config_names_bad_keyword():
    with pytest.raises(ConfigError, match=r"arguments: unknown key 'trial'"):
        make_config(trial=3)


def test_compress_section(tmp_path):
    config = load_config(_write(tmp_path, "compress:\n  max_accuracy_drop: 0.02\n"
                                          "  cluster_counts: [16]\n"))
    assert config.compress.max_accuracy_drop == 0.02
    assert config.compress.cluster_counts == (16,)
    assert load_config(_write(tmp_path, "seed: 1\n", "b.yaml")).compress is None
    with pytest.raises(ConfigError, match=r"line 2: unknown key 'compress.budget'"):
        load_config(_write(tmp_path, "compress:\n  budget: 0.01\n", "c.yaml"))
    with pytest.raises(ConfigError, match=r"Received: compress.max_accuracy_drop=1.5"):
        load_config(_write(tmp_path, "compress:\n  max_accuracy_drop: 1.5\n", "d.yaml"))


def test_multi_objective_sections(tmp_path):
    config = load_config(_write(tmp_path, (
        "objectives: [val_accuracy, gzip_bytes]\n"
        "oracle: nsga2\n"
        "constraints: {max_params: 50000, min_accuracy: 0.9}\n"
        "compression_space: {sparsities: [0.0, 0.5], clusters: [0, 16], quantization: [int8]}\n"
        "teacher: teacher.keras\n")))
    assert config.multi_objective
    assert config.objectives == [["val_accuracy", "max"], ["gzip_bytes", "min"]]
    assert config.constraints.max_params == 50000
    assert config.compression_space.quantization == ("int8",)
    assert config.compression_space.channels == (1.0,)  # default: no structured pruning
    assert config.teacher == str((tmp_path / "teacher.keras").resolve())
    assert load_config(_write(tmp_path, "objectives: {latency_us: min}\n", "b.yaml")) \
        .oracle_name() == "tpe"
    assert load_config(_write(tmp_path, "objectives: [val_accuracy, params]\n", "c.yaml")) \
        .oracle_name() == "nsga2"
    assert not load_config(_write(tmp_path, "seed: 1\n", "d.yaml")).multi_objective
    assert load_config(_write(tmp_path, "objectives: [val_f1, gzip_bytes]\n", "e.yaml")) \
        .objectives == [["val_f1", "max"], ["gzip_bytes", "min"]]
    with pytest.raises(ConfigError, match=r"Received: objectives=\{'val_f1': 'min'\}; expected "
                                          r"direction 'max' for objective 'val_f1'"):
        load_config(_write(tmp_path, "objectives: {val_f1: min}\n", "f.yaml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("objectives: [val_accuracy, flops]\n",
         r"line 1: Received: objectives=\['val_accuracy', 'flops'\]; .*'flops'"),
        ("objectives: {gzip_bytes: max}\n", r"Received: objectives=\{'gzip_bytes': 'max'\}"),
        ("objectives: [val_accuracy]\noracle: annealing\n",
         r"line 2: Received: oracle='annealing'; expected one of \('random'"),
        ("oracle: nsga2\n", r"'oracle' belongs to a multi-objective search; expected "
                            r"'objectives' to be set too"),
        ("objectives: [val_accuracy]\nconstraints: {max_params: 0}\n",
         r"Received: constraints.max_params=0"),
        ("objectives: [val_accuracy]\nconstraints: {min_accuracy: 1.5}\n",
         r"Received: constraints.min_accuracy=1.5"),
        ("objectives: [val_accuracy]\nconstraints: {max_flops: 3}\n",
         r"unknown key 'constraints.max_flops'"),
        ("objectives: [val_accuracy]\ncompression_space: {quantization: [int4]}\n",
         r"line 2: Received: compression_space=.*quantization=\('int4',\); expected choices"),
        ("objectives: [val_accuracy]\ncompression_space: {channels: [0.5, 1.5]}\n",
         r"line 2: Received: compression_space=.*channels=\(0.5, 1.5\); expected a non-empty "
         r"list of distinct fractions in \(0, 1\]"),
    ],
)
def test_multi_objective_bad_values(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def test_the_pareto_example_loads():
    from pathlib import Path

    config = load_config(Path(__file__).parent.parent / "examples" / "pareto.yaml")
    assert config.multi_objective and config.oracle_name() == "nsga2"
    assert config.constraints.max_params == 100000


def test_mnist1d_dataset_section_loads_the_published_split(tmp_path):
    from keras_autoopt.pipeline._setup import load

    config = load_config(_write(tmp_path, (
        "dataset: {source: mnist1d, val_fraction: 0.1, test_samples: 2000}\n")))
    assert config.dataset.test_fraction is None
    data = load(config.dataset.source, config)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (3600, 400, 2000)
    assert data.input_shape == (40, 1)
    with pytest.raises(DatasetError, match=r"Received: test_fraction=0.2 for the built-in data "
                                           r"set 'mnist1d'"):
        load("mnist1d", load_config(_write(tmp_path, (
            "dataset: {source: mnist1d, test_fraction: 0.2}\n"), "b.yaml")))
