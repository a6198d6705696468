"""Measure ``.tflite`` models: LiteRT metrics, TFLite Micro runs, Vela (Ethos-U) estimates, MACs."""

from keras_autoopt.measure._device import TFLM_CHECK_SAMPLES, DeviceMetrics, measure_on_target
from keras_autoopt.measure._litert import TFLiteRunner, top1_labels
from keras_autoopt.measure._macs import count_macs, operator_counts
from keras_autoopt.measure._measure import MIN_LATENCY_RUNS, TFLiteMetrics, measure_tflite
from keras_autoopt.measure._tflm import TFLMCheck, TFLMError, TFLMRun, check_tflm, run_tflm
from keras_autoopt.measure._vela import VELA_ACCELERATORS, VelaError, VelaReport, run_vela

__all__ = [
    "MIN_LATENCY_RUNS",
    "TFLM_CHECK_SAMPLES",
    "DeviceMetrics",
    "TFLMCheck",
    "TFLMError",
    "TFLMRun",
    "TFLiteMetrics",
    "TFLiteRunner",
    "VELA_ACCELERATORS",
    "VelaError",
    "VelaReport",
    "check_tflm",
    "count_macs",
    "measure_on_target",
    "measure_tflite",
    "operator_counts",
    "run_tflm",
    "run_vela",
    "top1_labels",
]
