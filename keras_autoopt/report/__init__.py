"""The run report: ``report.json``, ``report.md`` and plots, plus the terminal table.

This package only formats data: it never imports TensorFlow or Keras. Plots
are drawn with Matplotlib's object-oriented API and the Agg canvas, without
``pyplot``, so no global backend state is touched.
"""

from keras_autoopt.report._environment import environment_info
from keras_autoopt.report._terminal import format_models_table
from keras_autoopt.report._write import ReportPaths, validate_report, write_report

__all__ = [
    "ReportPaths",
    "environment_info",
    "format_models_table",
    "validate_report",
    "write_report",
]
