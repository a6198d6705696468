import json
import os
import re
import subprocess
import sys

import pytest

from keras_autoopt.cli import main


def _run_main(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tuner: random\ntrials: [1, 2\n", r"bad.yaml, line 3, column 1: malformed YAML"),
        ("tuner: random\ntrails: 5\n", r"bad.yaml, line 2: unknown key 'trails'"),
        ("trials: ten\n", r"bad.yaml, line 1: Received: trials='ten'; Input should be a valid"),
    ],
)
def test_run_with_a_bad_config_exits_2_without_traceback(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = _run_main(capsys, "run", "--config", str(path), "--output",
                               str(tmp_path / "out"))
    assert code == 2
    assert err.startswith("keras-autoopt: error: ")
    assert re.search(message, err), err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_run_with_a_missing_config_exits_2(tmp_path, capsys):
    code, _, err = _run_main(capsys, "run", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "Received: config=" in err and "expected an existing YAML file" in err


def test_run_with_missing_data_exits_2(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("dataset: nowhere/data.npz\n")
    code, _, err = _run_main(capsys, "run", "--config", str(path))
    assert code == 2
    assert "data.npz" in err and "Traceback" not in err


def test_demo_rejects_zero_trials(capsys):
    code, _, err = _run_main(capsys, "demo", "--trials", "0")
    assert code == 2
    assert "Received: --trials=0; expected a positive integer" in err


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["run", "--help"]])
def test_help(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: keras-autoopt" in out
    if argv[0] == "run":
        assert "--config" in out and "--overwrite" in out


def test_run_a_user_config_end_to_end(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text("dataset: digits\nhypermodel: dense\ntrials: 1\nepochs: 2\n"
                    "export_modes: [float32]\n")
    code, out, _ = _run_main(capsys, "run", "--config", str(path), "--output",
                             str(tmp_path / "out"))
    assert code == 0
    assert "[trial 1/1]" in out and "best_float32" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["search"]["hypermodel"] == "dense"


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    """The demo as a user runs it: the console script, digits, >= 97 % under LiteRT."""
    script = os.path.join(os.path.dirname(sys.executable), "keras-autoopt")
    result = subprocess.run([script, "demo", "--output", str(tmp_path / "demo")],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["search"]["trials_total"] == 12
    assert report["search"]["trials"] >= 11, report["trials"]  # completed: a rare failure ok
    assert report["pareto"]["front"] and report["pareto"]["hypervolume"] > 0
    best = max(model["accuracy"] for model in report["models"])
    assert best >= 0.97, report["models"]
    assert "[trial 12/12] " in result.stdout
    # Every model it recommends runs on the microcontroller target, within its budgets:
    # full int8, batch 1, a C array beside the best model, checked under TFLite Micro.
    assert report["pareto"]["target"]["name"] == "tflm"
    assert [o["name"] for o in report["pareto"]["objectives"]] == ["val_accuracy", "flash_bytes"]
    for model in report["models"]:
        assert model["mode"] == "int8" and model["device"]["tflm_compatible"], model
        assert model["device"]["flash_bytes"] <= 1_048_576
        assert model["device"]["ram_bytes"] <= 262_144
    assert (tmp_path / "demo" / "models" / "best_int8.cc").is_file()
    assert "runs on tflm" in result.stdout and "### On the target: tflm" in \
        (tmp_path / "demo" / "report.md").read_text()
    # A user sees our lines, not TensorFlow's start-up / converter chatter or tracebacks.
    for noise in ("cudart_stub", "WARNING: All log messages", "fully_quantize",
                  "Created TensorFlow Lite", "Traceback"):
        assert noise not in result.stdout + result.stderr, noise


def test_compress_errors_exit_2(tmp_path, capsys):
    code, _, err = _run_main(capsys, "compress", "--model", str(tmp_path / "none.keras"))
    assert code == 2
    assert "Received: model=" in err and "expected an existing model file" in err
    code, _, err = _run_main(capsys, "compress", "--model", str(tmp_path / "none.keras"),
                             "--max-accuracy-drop", "2")
    assert code == 2 and "Received: --max-accuracy-drop=2.0; expected a fraction" in err
    code, _, err = _run_main(capsys, "compress", "--model", str(tmp_path / "none.keras"),
                             "--minimize", "ram")
    assert code == 2 and "Received: --minimize=ram without --target; expected a target " \
        "that reports RAM, e.g. --target tflm." in err
    code, _, err = _run_main(capsys, "compress", "--model", str(tmp_path / "none.keras"),
                             "--minimize", "ram", "--target", "host")
    assert code == 2 and "Received: --minimize=ram with --target=host, which reports no RAM" \
        in err
    code, _, err = _run_main(capsys, "compress", "--model", str(tmp_path / "none.keras"),
                             "--target", "toaster")
    assert code == 2 and "Received: --target='toaster'; expected one of host" in err


def test_compress_refuses_a_model_that_does_not_fit_the_data(tmp_path, capsys):
    from keras_autoopt._backend import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "m.keras")
    code, _, err = _run_main(capsys, "compress", "--model", str(tmp_path / "m.keras"))
    assert code == 2
    assert "Received: model input shape (4,); expected (8, 8, 1)" in err


def test_compress_a_saved_model_end_to_end(tmp_path, capsys):
    from keras_autoopt._backend import keras
    from keras_autoopt.data import load_dataset

    data = load_dataset("digits")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=5, verbose=0)
    model.save(tmp_path / "m.keras")
    code, out, _ = _run_main(capsys, "compress", "--model", str(tmp_path / "m.keras"),
                             "--output", str(tmp_path / "c"), "--max-accuracy-drop", "0.02")
    assert code == 0
    assert "within budget" in out and "Report:" in out
    report = json.loads((tmp_path / "c" / "compression.json").read_text())
    assert report["budget"]["max_accuracy_drop"] == 0.02


@pytest.mark.parametrize(("argv", "message"), [
    (["worker", "--chief", "8470", "--id", "w0"],
     r"Received: address='8470'; expected HOST:PORT"),
    (["worker", "--chief", "127.0.0.1:8470", "--id", "chief-2"],
     r"Received: worker_id='chief-2'; expected an id without 'chief'"),
    (["worker", "--chief", "127.0.0.1:8470", "--id", "w0", "--heartbeat", "0"],
     r"Received: heartbeat=0.0; expected a positive number"),
    (["run", "--serve", "localhost", "--config", "{config}"],
     r"Received: address='localhost'; expected HOST:PORT"),
    (["run", "--serve", "127.0.0.1:8470", "--trial-timeout", "-1", "--config", "{config}"],
     r"Received: trial_timeout=-1.0; expected a positive number"),
])
def test_distributed_options_are_checked_before_any_work(tmp_path, capsys, argv, message):
    config = tmp_path / "run.yaml"
    config.write_text("trials: 1\n", encoding="utf-8")
    argv = [a.replace("{config}", str(config)) for a in argv]
    argv += ["--output", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-autoopt: error: ")
    assert re.search(message, err), err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_search_stopped_by_failures_exits_1_with_the_reason(tmp_path, capsys, monkeypatch):
    from keras_autoopt.search import SearchStopped

    def stopped(**kwargs):
        raise SearchStopped("Number of consecutive failures exceeded the limit of 3; the "
                            "last one: ValueError: bad")

    monkeypatch.setattr("keras_autoopt.pipeline.run_pipeline", stopped)
    config = tmp_path / "run.yaml"
    config.write_text("trials: 1\n", encoding="utf-8")
    assert main(["run", "--config", str(config), "--output", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err == ("keras-autoopt: the search stopped: Number of consecutive failures exceeded "
                   "the limit of 3; the last one: ValueError: bad\n")
