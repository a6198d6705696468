"""The demo's models next to the hand-made reference CNN on the demo's target, in one run.

Runs ``keras-autoopt demo`` (the same configuration, in-process: digits, the
``tflm`` target, accuracy vs flash) into a temporary folder, then trains the
reference CNN of shared/STACK.md on the same split and exports it for the same
target (full int8, batch 1). Every model is measured the same way: test
accuracy under LiteRT, and for the device flash bytes, the TFLite Micro arena
(peak RAM), MACs, Arm Vela's NPU time on an Ethos-U55-128 and the host LiteRT
latency. Prints them side by side with ratios (reference / ours) and writes
``benchmarks/results/demo.json``.

Run: ``python benchmarks/demo.py``
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

from _results import RESULTS_DIR, write_results
from reference import REFERENCE_EPOCHS, train_reference

import keras_autoopt  # noqa: F401  (sets up tf_keras first)
from keras_autoopt.cli import DEMO_CONFIG
from keras_autoopt.data import load_dataset
from keras_autoopt.export import export_for_target
from keras_autoopt.measure import measure_on_target, measure_tflite, run_vela
from keras_autoopt.pipeline import run_pipeline

RESULTS = RESULTS_DIR / "demo.json"
NPU = "ethos-u55-128"


def _figures(path: Path, dataset, target: str) -> dict:
    """Test accuracy and host latency (LiteRT), flash / RAM / MACs (target), NPU time (Vela)."""
    host = measure_tflite(path, dataset.x_test, dataset.y_test)
    device = measure_on_target(path, target, dataset.x_val)
    vela = run_vela(path, NPU)
    return {"accuracy": host.accuracy, "f1_macro": host.f1_macro,
            "flash_bytes": device.flash_bytes, "ram_bytes": device.ram_bytes,
            "macs": device.macs, "runs_on_target": device.runs,
            "npu_latency_ms": vela.npu_latency_ms, "npu_share": vela.npu_share,
            "host_latency_us": host.latency_us_median, "gzip_bytes": host.gzip_bytes}


def main() -> None:
    dataset = load_dataset("digits", seed=DEMO_CONFIG.seed)
    target = DEMO_CONFIG.target
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_pipeline(dataset, Path(tmp) / "demo", config=DEMO_CONFIG,
                              stream=io.StringIO())
        demo_time = time.perf_counter() - start
        ours = {m["name"]: {"params": m["params"],
                            **_figures(Path(tmp) / "demo" / m["path"], dataset, target)}
                for m in result.report["models"]}

        start = time.perf_counter()
        model = train_reference(dataset, seed=DEMO_CONFIG.seed)
        path = export_for_target(model, Path(tmp) / "reference.tflite", target,
                                 representative_data=dataset.x_train).path
        reference = {"params": int(model.count_params()), **_figures(path, dataset, target)}
        reference_time = time.perf_counter() - start

    columns = ("accuracy", "flash_bytes", "ram_bytes", "macs", "npu_latency_ms",
               "host_latency_us")
    print(f"{'model':12} {'accuracy':>9} {'flash B':>9} {'RAM B':>8} {'MACs':>10} "
          f"{'NPU ms':>8} {'host µs':>8}")

    def line(name: str, m: dict) -> None:
        print(f"{name:12} {m['accuracy']:>9.2%} {m['flash_bytes']:>9,} {m['ram_bytes']:>8,} "
              f"{m['macs']:>10,} {m['npu_latency_ms']:>8.4f} {m['host_latency_us']:>8.1f}")

    line("reference", reference)
    rows = []
    for name, m in ours.items():
        line(name, m)
        ratios = {f"{key}_reference_over_ours": round(reference[key] / m[key], 2)
                  for key in columns[1:] if m[key]}
        rows.append({"name": name, **m, "accuracy_delta_pt":
                     round(100 * (m["accuracy"] - reference["accuracy"]), 2), **ratios})
        print(f"{'  ratio':12} {rows[-1]['accuracy_delta_pt']:>+8.2f}pt "
              + " ".join(f"{ratios.get(f'{k}_reference_over_ours', float('nan')):>8.2f}x"
                         for k in columns[1:]))
    best = next(iter(ours.values()))  # best_int8: the model the tool picks (on validation)
    print(f"demo wall time {demo_time:.1f}s (goal <= 180 s); the tool's pick: "
          f"{best['accuracy']:.2%} test accuracy (goal >= 97 %); every model runs on "
          f"{target}: {all(m['runs_on_target'] for m in ours.values())}; reference: "
          f"{REFERENCE_EPOCHS} epochs, {reference_time:.1f}s")
    write_results(RESULTS, {
        "benchmark": "demo",
        "command": "python benchmarks/demo.py",
        "config": DEMO_CONFIG.model_dump(mode="json"),
        "dataset": dataset.summary(),
        "target": target,
        "npu_for_vela_time": NPU,
        "demo_wall_time_s": round(demo_time, 2),
        "demo_search_wall_time_s": result.report["search"]["wall_time_s"],
        "picked": next(iter(ours)),
        "picked_test_accuracy": best["accuracy"],
        "best_exported_accuracy": max(m["accuracy"] for m in ours.values()),
        "share_running_on_target": sum(m["runs_on_target"] for m in ours.values()) / len(ours),
        "test_samples": len(dataset.y_test),
        "noise_note": "270 test samples: one sample is 0.37 pt",
        "goal_accuracy_at_least": 0.97,
        "goal_wall_time_s_at_most": 180,
        "best_hyperparameters": result.report["search"]["best_hyperparameters"],
        "reference": {"epochs": REFERENCE_EPOCHS, "wall_time_s": round(reference_time, 2),
                      **reference},
        "models": rows,
    })


if __name__ == "__main__":
    main()
