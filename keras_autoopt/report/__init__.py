"""The reports: run report and compression report (JSON, Markdown, plots), terminal tables.

The reports' schema is a set of typed records (pydantic models: `RunReport`,
`CompressionReport` and their parts); the writers validate a report dict
with them. This package only formats data: it never imports TensorFlow or Keras. Plots
are drawn with Matplotlib's object-oriented API and the Agg canvas, without
``pyplot``, so no global backend state is touched.
"""

from keras_autoopt.report._environment import environment_info
from keras_autoopt.report._records import ExportedModel, ExportFailure, RunReport, Search, Trial
from keras_autoopt.report._records_compression import (
    Budget,
    CompressedModel,
    CompressionPointer,
    CompressionReport,
    CompressionStage,
    Dataset,
)
from keras_autoopt.report._records_pareto import Pareto, ParetoObjective, ParetoTrial
from keras_autoopt.report._terminal import format_models_table, format_stages_table
from keras_autoopt.report._write import (
    CompressionReportPaths,
    ReportPaths,
    validate_compression_report,
    validate_report,
    write_compression_report,
    write_report,
)

__all__ = [
    "Budget",
    "CompressedModel",
    "CompressionPointer",
    "CompressionReport",
    "CompressionReportPaths",
    "CompressionStage",
    "Dataset",
    "ExportFailure",
    "ExportedModel",
    "Pareto",
    "ParetoObjective",
    "ParetoTrial",
    "ReportPaths",
    "RunReport",
    "Search",
    "Trial",
    "environment_info",
    "format_models_table",
    "format_stages_table",
    "validate_compression_report",
    "validate_report",
    "write_compression_report",
    "write_report",
]
