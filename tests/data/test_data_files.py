from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from keras_autoopt._backend import tf
from keras_autoopt.data import DatasetError, from_image_folder, from_npz, load_dataset

# --- .npz -------------------------------------------------------------------


def test_npz_with_x_and_y_is_split(tmp_path, make_class_arrays):
    x, y = make_class_arrays(shape=(5,), dtype=np.float32)
    path = tmp_path / "toy.npz"
    np.savez(path, x=x, y=y, class_names=np.array(["a", "b", "c"]))
    data = from_npz(path)
    assert data.summary() == {
        "name": "toy",
        "n_train": 20,
        "n_val": 5,
        "n_test": 5,
        "input_shape": [5],
        "num_classes": 3,
    }
    assert data.class_names == ("a", "b", "c")
    assert np.array_equal(load_dataset(str(path)).x_test, data.x_test)


def test_npz_with_all_splits_is_kept_as_is(tmp_path, make_class_arrays):
    x, y = make_class_arrays(shape=(5,), dtype=np.float32)
    path = tmp_path / "full.npz"
    np.savez(
        path,
        x_train=x[:20],
        y_train=y[:20],
        x_val=x[20:25],
        y_val=y[20:25],
        x_test=x[25:],
        y_test=y[25:],
    )
    data = from_npz(path, name="given")
    assert data.name == "given"
    assert np.array_equal(data.x_train, x[:20])
    assert np.array_equal(data.y_val, y[20:25])
    assert np.array_equal(data.x_test, x[25:])


def test_npz_missing_splits_are_carved_from_train(tmp_path, make_class_arrays):
    x, y = make_class_arrays(n_per_class=20, shape=(5,), dtype=np.float32)
    both = tmp_path / "train_only.npz"
    np.savez(both, x_train=x, y_train=y)
    data = from_npz(both)
    assert (data.summary()["n_train"], data.summary()["n_val"], data.summary()["n_test"]) == (
        42,
        9,
        9,
    )
    only_test = tmp_path / "with_test.npz"
    np.savez(only_test, x_train=x, y_train=y, x_test=x[:6], y_test=y[:6])
    data = from_npz(only_test, val_fraction=0.25)
    assert (data.summary()["n_train"], data.summary()["n_val"], data.summary()["n_test"]) == (
        45,
        15,
        6,
    )
    assert np.array_equal(data.x_test, x[:6])


def test_npz_one_hot_labels(tmp_path, make_class_arrays):
    x, y = make_class_arrays(shape=(5,), dtype=np.float32)
    path = tmp_path / "onehot.npz"
    np.savez(path, x=x, y=np.eye(3, dtype=np.float32)[y])
    data = from_npz(path)
    assert data.num_classes == 3 and data.y_train.dtype == np.int64


def test_npz_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(
        DatasetError, match=r"Received: path='.*nope\.npz', which is not an existing file"
    ):
        from_npz(path)
    with pytest.raises(FileNotFoundError):
        load_dataset(str(path))


def test_npz_missing_keys_lists_found_and_expected(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(
        DatasetError,
        match=r"with keys \['labels', 'x_train'\] \(missing \['y_train'\]; unexpected "
        r"\['labels'\]\); expected 'x' and 'y' \(split for you\), or 'x_train' and 'y_train'",
    ):
        from_npz(path)


def test_npz_unpaired_split(tmp_path, make_class_arrays):
    x, y = make_class_arrays(shape=(5,), dtype=np.float32)
    path = tmp_path / "unpaired.npz"
    np.savez(path, x_train=x, y_train=y, x_val=x[:3])
    with pytest.raises(DatasetError, match=r"expected 'x_val' and 'y_val' together, or neither"):
        from_npz(path)


def test_npz_mismatched_split_shapes(tmp_path, make_class_arrays):
    x, y = make_class_arrays(shape=(5,), dtype=np.float32)
    path = tmp_path / "shapes.npz"
    np.savez(path, x_train=x, y_train=y, x_val=x[:6, :4], y_val=y[:6])
    with pytest.raises(DatasetError, match=r"x_val with sample shape \(4,\); expected \(5,\)"):
        from_npz(path)


def test_npz_object_arrays_and_garbage_are_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([[1], "a"], dtype=object), y=np.zeros(2))
    with pytest.raises(DatasetError, match=r"Object arrays are refused"):
        from_npz(path)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"Received: path='.*garbage\.npz', which is not a "
                                           r"\.npz archive \(not a zip file\)"):
        from_npz(garbage)


# --- image folders ------------------------------------------------------------


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """3 classes x 8 PNG images of 10x12 RGB; class k is bright in channel k."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for k, name in enumerate(["cat", "dog", "owl"]):
        (root / name).mkdir()
        for i in range(8):
            img = rng.integers(0, 60, size=(10, 12, 3), dtype=np.uint8)
            img[..., k] = 255
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png(img))
    (root / "README.txt").write_text("ignored")
    return root


def test_image_folder_rgb(image_folder):
    data = from_image_folder(
        image_folder, image_size=(10, 12), val_fraction=0.25, test_fraction=0.25
    )
    assert data.name == "images0"
    assert data.class_names == ("cat", "dog", "owl")
    assert data.summary()["n_train"] + data.summary()["n_val"] + data.summary()["n_test"] == 24
    assert (data.summary()["n_val"], data.summary()["n_test"]) == (6, 6)
    assert data.input_shape == (10, 12, 3)
    x = np.concatenate([data.x_train, data.x_val, data.x_test])
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() == 1.0
    # The label matches the folder: the bright channel is the class index.
    assert np.array_equal(np.argmax(x.mean(axis=(1, 2)), axis=1), y)


def test_image_folder_grayscale_resized_through_load_dataset(image_folder):
    data = load_dataset(
        image_folder,
        image_size=(4, 4),
        color_mode="grayscale",
        val_fraction=0.25,
        test_fraction=0.25,
        seed=2,
    )
    assert data.input_shape == (4, 4, 1)
    assert data.num_classes == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": (32,)}, r"Received: image_size=\(32,\); expected two positive integers"),
        ({"image_size": (0, 8)}, r"Received: image_size=\(0, 8\); expected two positive integers"),
        ({"image_size": 32}, r"Received: image_size=32; expected two positive integers"),
        ({"image_size": (8.0, 8)}, r"Received: image_size=\(8\.0, 8\)"),
        (
            {"color_mode": "RGB"},
            r"Received: color_mode='RGB'; expected one of \('grayscale', 'rgb', 'rgba'\)",
        ),
        ({"test_fraction": 1.0}, r"Received: test_fraction=1\.0; expected a float in \(0, 1\)"),
    ],
)
def test_image_folder_bad_arguments_checked_before_reading(tmp_path, kwargs, message):
    # The folder does not exist: the argument error must come first.
    with pytest.raises(DatasetError, match=message):
        from_image_folder(tmp_path / "absent", **kwargs)


def test_image_folder_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"which is not an existing folder"):
        from_image_folder(tmp_path / "absent")


def test_image_folder_without_images(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(DatasetError, match=r"Cannot read images from .*No images found"):
        from_image_folder(tmp_path)


def test_image_folder_single_class(tmp_path):
    (tmp_path / "only").mkdir()
    for i in range(3):
        img = np.zeros((4, 4, 3), np.uint8)
        tf.io.write_file(str(tmp_path / "only" / f"{i}.png"), tf.io.encode_png(img))
    with pytest.raises(
        DatasetError, match=r"with 1 class sub-folder\(s\) \['only'\]; expected at least 2"
    ):
        from_image_folder(tmp_path)


def test_image_folder_too_few_images_per_class(image_folder):
    with pytest.raises(
        DatasetError,
        match=r"class 0 \('cat'\) has 8 samples, class 1 \('dog'\) has 8 samples, class 2 "
        r"\('owl'\) has 8 samples; expected at least 10 samples per class",
    ):
        from_image_folder(image_folder, val_fraction=0.1, test_fraction=0.1)


def test_image_folder_empty_class(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(8):
            img = np.zeros((4, 4, 3), np.uint8)
            tf.io.write_file(str(tmp_path / name / f"{i}.png"), tf.io.encode_png(img))
    (tmp_path / "c").mkdir()
    with pytest.raises(DatasetError, match=r"class sub-folder\(s\) \['c'\] hold no images"):
        from_image_folder(tmp_path)


# --- untrusted data files: no pickle, no decompression bomb, corrupt files named ---------
class _Payload:
    """Unpickling this object creates a marker file (as os.system would run a command)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path(self.marker).touch, ())


def test_npz_with_a_pickle_payload_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([_Payload(marker)] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(DatasetError, match=r"Object arrays are refused \(they would need "
                                           r"pickle\)"):
        from_npz(path)
    with pytest.raises(DatasetError):
        load_dataset(str(path))
    assert not marker.exists()
    np.load(path, allow_pickle=True)["x"]  # the payload is real: pickle runs it
    assert marker.exists()


def _class_folders(root: Path, n: int = 4, size: tuple[int, int] = (6, 6)) -> Path:
    from PIL import Image

    for k, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("L", size, color=40 * k + i).save(root / name / f"{i}.png")
    return root


def test_image_folder_names_a_corrupt_image(tmp_path):
    root = _class_folders(tmp_path / "imgs")
    (root / "b" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DatasetError, match=r"Cannot read image '.*b/bad\.png'"):
        from_image_folder(root, image_size=(6, 6))


def test_image_folder_names_a_truncated_image(tmp_path):
    from PIL import Image

    root = _class_folders(tmp_path / "imgs")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(root / "a" / "t.png")
    data = (root / "a" / "t.png").read_bytes()
    (root / "a" / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"Cannot read image '.*a/t\.png'"):
        from_image_folder(root, image_size=(6, 6))


def test_image_folder_refuses_an_oversized_image_before_decoding(tmp_path):
    from PIL import Image

    root = _class_folders(tmp_path / "imgs")
    Image.new("1", (4100, 4100)).save(root / "a" / "huge.png")  # a few KB on disk
    with pytest.raises(DatasetError, match=r"Received: image '.*a/huge\.png' of 4100x4100 "
                                           r"pixels \(16,810,000\); expected at most "
                                           r"max_image_pixels=16,777,216"):
        from_image_folder(root, image_size=(6, 6))
    with pytest.raises(DatasetError, match=r"of 6x6 pixels \(36\); expected at most "
                                           r"max_image_pixels=35"):
        from_image_folder(_class_folders(tmp_path / "small"), image_size=(6, 6),
                          max_image_pixels=35)
    with pytest.raises(DatasetError, match=r"Received: max_image_pixels=0; expected a "
                                           r"positive integer"):
        from_image_folder(root, max_image_pixels=0)


def test_image_folder_refuses_another_format_behind_an_image_suffix(tmp_path):
    from PIL import Image

    root = _class_folders(tmp_path / "imgs")
    Image.new("L", (6, 6)).save(root / "a" / "x.png", format="TIFF")
    with pytest.raises(DatasetError, match=r"'.*a/x\.png' holding a TIFF image; expected "
                                           r"jpeg, png, bmp or gif"):
        from_image_folder(root, image_size=(6, 6))
