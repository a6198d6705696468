"""YAML and Python agree: the same defaults, the same rules (`keras_autoopt._rules`)."""

import inspect
import math

import pytest

from keras_autoopt import _rules
from keras_autoopt._defaults import EXPORT_MODES
from keras_autoopt.compress import auto_compress
from keras_autoopt.config import CompressConfig, CompressionSpaceConfig, ConfigError, make_config
from keras_autoopt.search import CompressionSpace, OptimizerSpace

#: Arguments of `auto_compress` that the run gives itself, not the ``compress:`` section.
# ``target`` comes from the run's own ``target:`` key, not the compress section.
RUN_ARGUMENTS = {"model", "dataset", "output_dir", "seed", "stream", "target"}


def _defaults(function) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()}


def _check_section(section, python_defaults: dict) -> None:
    """Every field is an argument; its default is the argument's, or None (keep it)."""
    assert set(section.model_fields) == set(python_defaults)
    for name, field in section.model_fields.items():
        if field.default is None:
            continue
        expected = python_defaults[name]
        if isinstance(expected, (list, tuple)):
            expected = tuple(expected)
        assert field.default == expected, name


def test_compress_section_sets_every_auto_compress_argument_with_its_default():
    python = {k: v for k, v in _defaults(auto_compress).items() if k not in RUN_ARGUMENTS}
    _check_section(CompressConfig, python)


def test_compression_space_section_sets_every_argument_with_its_default():
    _check_section(CompressionSpaceConfig, _defaults(CompressionSpace))


def test_an_empty_yaml_section_builds_the_python_default(tmp_path):
    config = make_config(objectives=["val_accuracy"], compression_space={}, compress={})
    assert CompressionSpace(**config.compression_space.arguments()) == CompressionSpace()
    python = _defaults(auto_compress)
    for name, value in config.compress.model_dump(exclude_none=True).items():
        expected = python[name]
        assert value == (tuple(expected) if isinstance(expected, (list, tuple)) else expected)


def test_batch_sizes_is_the_optimizer_space_argument():
    assert "batch_sizes" in _defaults(OptimizerSpace)
    assert make_config().batch_sizes is None  # None: OptimizerSpace's own default
    assert make_config(batch_sizes=[16, 32]).batch_sizes == (16, 32)
    assert CompressionSpace(**make_config(
        objectives=["val_accuracy"], compression_space={"batch_size": 8}
    ).compression_space.arguments()).batch_size == 8


def test_the_shared_constants_are_the_python_defaults():
    python = _defaults(auto_compress)
    assert python["max_accuracy_drop"] == _rules.DEFAULT_MAX_ACCURACY_DROP
    assert tuple(python["sparsities"]) == _rules.DEFAULT_SPARSITIES
    assert tuple(python["cluster_counts"]) == _rules.DEFAULT_CLUSTER_COUNTS
    assert tuple(python["channel_ratios"]) == _rules.DEFAULT_CHANNEL_RATIOS
    space = CompressionSpace()
    assert space.quantization == _rules.DEFAULT_QUANTIZATIONS
    assert sorted(_rules.DEFAULT_QUANTIZATIONS) == sorted(EXPORT_MODES)
    assert space.sparsities == _rules.DEFAULT_SPACE_SPARSITIES
    assert space.clusters == _rules.DEFAULT_SPACE_CLUSTERS


NAN = math.nan

# (value, accepted with allow_zero=True (a search space), with allow_zero=False (targets))
SPARSITIES = [
    ([0.5, 0.9], True, True),
    ((0.0, 0.5), True, False),
    ([0], True, False),
    ([0.999], True, True),
    ([], False, False),
    ([1.0], False, False),
    ([-0.1], False, False),
    ([NAN], False, False),
    ([True], False, False),
    (["0.5"], False, False),
    ("0.5", False, False),
    (0.5, False, False),
]


@pytest.mark.parametrize(("value", "space_ok", "target_ok"), SPARSITIES)
def test_sparsities_rule(value, space_ok, target_ok):
    for allow_zero, ok in ((True, space_ok), (False, target_ok)):
        if ok:
            assert _rules.check_sparsities("s", value, allow_zero=allow_zero) == \
                tuple(float(v) for v in value)
        else:
            interval = r"\[0, 1\)" if allow_zero else r"\(0, 1\)"
            with pytest.raises(ValueError, match=rf"Received: s=.*; expected a non-empty list "
                                                 rf"of fractions in {interval}"):
                _rules.check_sparsities("s", value, allow_zero=allow_zero)


@pytest.mark.parametrize(("value", "space_ok", "target_ok"), SPARSITIES[:8])
def test_every_entry_point_applies_the_sparsities_rule(value, space_ok, target_ok):
    def refused(call) -> bool:
        try:
            call()
        except (ValueError, ConfigError):
            return True
        return False

    assert refused(lambda: CompressionSpace(sparsities=value)) is not space_ok
    yaml_space = {"objectives": ["val_accuracy"], "compression_space": {"sparsities": value}}
    assert refused(lambda: make_config(**yaml_space)) is not space_ok
    assert refused(lambda: make_config(compress={"sparsities": value})) is not target_ok
    if not target_ok:  # auto_compress checks its arguments before it touches the model

        with pytest.raises(ValueError, match="Received: sparsities="):
            auto_compress(None, None, "unused", sparsities=value)


CLUSTERS = [
    ([8, 16], True, True),
    ((0, 16), True, False),
    ([0], True, False),
    ([], False, True),
    ([1], False, False),
    ([2], True, True),
    ([-2], False, False),
    ([16.0], False, False),
    ([True], False, False),
    (16, False, False),
]


@pytest.mark.parametrize(("value", "space_ok", "target_ok"), CLUSTERS)
def test_cluster_counts_rule(value, space_ok, target_ok):
    for allow_zero, ok in ((True, space_ok), (False, target_ok)):
        if ok:
            assert _rules.check_cluster_counts("c", value, allow_zero=allow_zero) == tuple(value)
        else:
            with pytest.raises(ValueError, match=r"Received: c=.*; expected a "):
                _rules.check_cluster_counts("c", value, allow_zero=allow_zero)
    if target_ok:
        assert make_config(compress={"cluster_counts": value}).compress.cluster_counts == \
            tuple(value)
    else:
        if value != [16.0]:  # pydantic reads YAML's 16.0 as the integer 16
            with pytest.raises(ConfigError, match=r"Received: compress\.cluster_counts[.=]"):
                make_config(compress={"cluster_counts": value})
        with pytest.raises(ValueError, match=r"Received: cluster_counts="):
            auto_compress(None, None, "unused", cluster_counts=value)
    if not space_ok:
        with pytest.raises(ValueError, match=r"Received: clusters="):
            CompressionSpace(clusters=value)


@pytest.mark.parametrize(("value", "ok"), [(2, True), (32, True), (1, False), (0, False),
                                           (2.0, False), (True, False), ("8", False)])
def test_cluster_count_rule(value, ok):
    if ok:
        assert _rules.check_cluster_count("n", value) == value
    else:
        with pytest.raises(ValueError, match=r"Received: n=.*; expected an integer >= 2\."):
            _rules.check_cluster_count("n", value)


@pytest.mark.parametrize(("value", "ok"), [(0, True), (0.01, True), (0.999, True), (1, False),
                                           (1.5, False), (-0.01, False), (NAN, False),
                                           (math.inf, False), (True, False), ("0.01", False)])
def test_max_accuracy_drop_rule(value, ok):
    if ok:
        assert _rules.check_max_accuracy_drop("m", value) == value
        assert make_config(compress={"max_accuracy_drop": value}).compress.max_accuracy_drop \
            == value
    else:
        message = r"Received: m=.*; expected a fraction in \[0, 1\), e\.g\. 0\.01 for one point"
        with pytest.raises(ValueError, match=message):
            _rules.check_max_accuracy_drop("m", value)
        if not isinstance(value, str):  # pydantic reads a quoted "0.01" as a number
            with pytest.raises(ConfigError, match=r"Received: compress\.max_accuracy_drop="):
                make_config(compress={"max_accuracy_drop": value})
        with pytest.raises(ValueError, match=message.replace("m=", "max_accuracy_drop=")):
            auto_compress(None, None, "unused", max_accuracy_drop=value)


@pytest.mark.parametrize(("value", "ok"), [(["int8"], True), (EXPORT_MODES, True),
                                           ([], False), (["int4"], False),
                                           (["int8", "int8"], False), ("int8", False)])
def test_quantizations_rule(value, ok):
    if ok:
        assert _rules.check_quantizations("q", value) == tuple(value)
    else:
        with pytest.raises(ValueError, match=r"Received: q=.*; expected "):
            _rules.check_quantizations("q", value)


def test_batch_sizes_reach_the_optimizer_space():
    from types import SimpleNamespace

    from keras_autoopt.pipeline._setup import build_hypermodel

    data = SimpleNamespace(input_shape=(8,), num_classes=3)
    chosen = build_hypermodel(make_config(hypermodel="dense", batch_sizes=[16]), data)
    default = build_hypermodel(make_config(hypermodel="dense"), data)
    assert chosen.optimizer_space.batch_sizes == (16,)
    assert default.optimizer_space.batch_sizes == tuple(_defaults(OptimizerSpace)["batch_sizes"])
