"""Measure ``.tflite`` models under LiteRT: size, gzip size, accuracy, latency."""

from keras_autoopt.measure._litert import TFLiteRunner, top1_labels
from keras_autoopt.measure._measure import MIN_LATENCY_RUNS, TFLiteMetrics, measure_tflite

__all__ = ["MIN_LATENCY_RUNS", "TFLiteMetrics", "TFLiteRunner", "measure_tflite", "top1_labels"]
