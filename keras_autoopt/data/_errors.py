"""Errors raised by `keras_autoopt.data`."""

from __future__ import annotations

from keras_autoopt._failure import InputError


class DatasetError(InputError):
    """Invalid data or invalid arguments given to a data loader.

    Every validation error of `keras_autoopt.data` is a `DatasetError`. The
    message names the argument (or file, or split), the value received and
    what was expected.
    """


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data file or folder does not exist.

    Both a `DatasetError` and a `FileNotFoundError`, so either can be caught.
    """
