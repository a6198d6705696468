"""Data sets for keras_autoopt: NumPy arrays with a fixed, stratified split.

Every loader returns a `Dataset`: ``float32`` inputs ``(N, *input_shape)``,
``int64`` class indices, and a train/validation/test split made once, from
a seed, with ``sklearn.model_selection.train_test_split(stratify=...)``.
Everything is held in memory: the package targets edge-scale data.

* `load_dataset`: ``"digits"`` (bundled with scikit-learn), ``"mnist1d"``
  (generated offline by the mnist1d package), a ``.npz`` path or an image
  folder.
* `from_arrays`, `from_npz`, `from_image_folder`, `from_tf_dataset`.

Every validation error is a `DatasetError` (a ``ValueError``).
"""

from keras_autoopt.data._arrays import from_arrays
from keras_autoopt.data._dataset import Dataset
from keras_autoopt.data._errors import DatasetError
from keras_autoopt.data._files import from_image_folder, from_npz
from keras_autoopt.data._load import load_dataset
from keras_autoopt.data._tf import from_tf_dataset

__all__ = [
    "Dataset",
    "DatasetError",
    "from_arrays",
    "from_image_folder",
    "from_npz",
    "from_tf_dataset",
    "load_dataset",
]
