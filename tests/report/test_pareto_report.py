"""The Pareto section of the run report: validation, plots and its section in report.md."""

from __future__ import annotations

import copy
import json
import math
import re

import pytest

from keras_autoopt.report import ParetoTrial, _pareto_plots, validate_report, write_report
from keras_autoopt.report import _plots as plots_module

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASE_PLOTS = {"trials_accuracy_vs_params", "models_accuracy_vs_gzip"}
PARETO_PLOTS = {"pareto_accuracy_vs_gzip", "pareto_accuracy_vs_latency"}

FRONT_HEADER = (
    "| trial | val accuracy (%) | gzip (bytes) | size (bytes) | latency (µs) | params "
    "| sparsity | clusters | quantization | temperature | alpha "
    "| other hyperparameters |"
)
FRONT_ROWS = {
    "00": "| 00 | 95.12 | 4,210 | 6,200 | 2.8 | 3,100 | 0.5 | 16 | int8 | - | - | filters=8 |",
    "01": (
        "| 01 | 97.31 | 9,876 | 14,500 | 3.2 | 8,000 | 0.8 | 8 | int8 | 4.0 | 0.3 | filters=16 |"
    ),
    "03": (
        "| 03 | 98.66 | 20,480 | 31,000 | 5.7 | 21,000 | 0.0 | - | float16 | - | - | filters=32 |"
    ),
}
HYPERVOLUME_LINE = (
    "Hypervolume: 1,234.6, measured from the reference point (val_accuracy 0.80, gzip_bytes "
    "52,000): the size of the region of objective space that the front dominates, bounded by "
    "that point, in the objectives' own units (larger is better)."
)


@pytest.fixture
def pareto_report(report, pareto) -> dict:
    report["pareto"] = pareto
    return report


# --- files and plots ----------------------------------------------------------------


def test_writes_both_pareto_plots(pareto_report, tmp_path, assert_png):
    paths = write_report(pareto_report, tmp_path)
    assert set(paths.plots) == BASE_PLOTS | PARETO_PLOTS
    for name in PARETO_PLOTS:
        assert paths.plots[name] == tmp_path / f"{name}.png"
        assert_png(paths.plots[name])
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["report.json", "report.md", *(f"{name}.png" for name in BASE_PLOTS | PARETO_PLOTS)]
    )  # no temporary files left behind


def test_plots_highlight_the_given_front(pareto_report, monkeypatch):
    # "02" is dominated and "04" infeasible: the front is drawn as given, not recomputed.
    annotated = []
    real_step = []

    class Spy:
        def __init__(self, axes):
            self._axes = axes

        def __getattr__(self, name):
            return getattr(self._axes, name)

        def annotate(self, text, *args, **kwargs):
            annotated.append(text)
            return self._axes.annotate(text, *args, **kwargs)

        def step(self, xs, ys, *args, **kwargs):
            real_step.append((list(xs), list(ys)))
            return self._axes.step(xs, ys, *args, **kwargs)

    real_new_figure = plots_module._new_figure

    def new_figure():
        figure, axes = real_new_figure()
        return figure, Spy(axes)

    monkeypatch.setattr(plots_module, "_new_figure", new_figure)
    png = _pareto_plots.render_pareto_plot(pareto_report["pareto"], "pareto_accuracy_vs_gzip")
    assert png[:8] == PNG_MAGIC
    assert annotated[:3] == ["00", "01", "03"]
    assert len(real_step) == 1
    assert real_step[0][0] == [4210.0, 9876.0, 20480.0]  # in x order
    assert real_step[0][1] == pytest.approx([95.12, 97.31, 98.66])


def test_plot_metric_missing_in_every_trial_draws_an_empty_note(
    pareto_report, monkeypatch, tmp_path, assert_png
):
    for trial in pareto_report["pareto"]["trials"]:
        trial["metrics"].pop("latency_us", None)
    notes = []
    real_note = plots_module._empty_note

    def spy(axes, text):
        notes.append(text)
        real_note(axes, text)

    monkeypatch.setattr(plots_module, "_empty_note", spy)
    paths = write_report(pareto_report, tmp_path)
    assert notes == ["no trial has a latency_us measurement"]
    assert_png(paths.plots["pareto_accuracy_vs_latency"])
    assert_png(paths.plots["pareto_accuracy_vs_gzip"])


def test_plot_with_nan_metrics_and_an_empty_front(pareto_report, tmp_path, assert_png):
    pareto = pareto_report["pareto"]
    pareto["trials"][0]["metrics"]["gzip_bytes"] = math.nan
    pareto["trials"][1]["metrics"]["val_accuracy"] = None
    pareto["front"] = []
    paths = write_report(pareto_report, tmp_path)
    for name in PARETO_PLOTS:
        assert_png(paths.plots[name])
    assert json.loads(paths.json.read_text())["pareto"]["trials"][0]["metrics"]["gzip_bytes"] is (
        None
    )


def test_unknown_plot_name(pareto):
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Received: name='pareto'; expected one of ('pareto_accuracy_vs_gzip', "
            "'pareto_accuracy_vs_latency', 'pareto_accuracy_vs_flash', 'pareto_accuracy_vs_ram')."
        ),
    ):
        _pareto_plots.render_pareto_plot(pareto, "pareto")


def _on_tflm(pareto: dict) -> dict:
    """``pareto`` searched for the tflm target: flash and RAM measured, its budgets as limits."""
    budgets = {"flash_bytes": 20_000, "ram_bytes": 3_000}
    pareto["target"] = {"name": "tflm", "runtime": "tflm", **budgets}
    pareto["constraints"].update(max_flash_bytes=budgets["flash_bytes"],
                                 max_ram_bytes=budgets["ram_bytes"])
    figures = {"00": (6_200, 1_900, 1.0), "01": (14_500, 2_600, 1.0), "02": (16_000, 2_700, 1.0),
               "03": (31_000, 3_400, 1.0), "04": (61_240, 5_000, 0.0)}
    for trial in pareto["trials"]:
        if trial["trial_id"] in figures:
            flash, ram, runs = figures[trial["trial_id"]]
            trial["metrics"].update(flash_bytes=flash, ram_bytes=ram, target_runs=runs)
    return pareto


def test_device_plots_draw_the_targets_budgets(pareto_report, monkeypatch, tmp_path,
                                               assert_png):
    _on_tflm(pareto_report["pareto"])
    lines = []
    real_new_figure = plots_module._new_figure

    def new_figure():
        figure, axes = real_new_figure()
        real_axvline = axes.axvline

        def axvline(x, *args, **kwargs):
            lines.append((x, kwargs.get("label")))
            return real_axvline(x, *args, **kwargs)

        axes.axvline = axvline
        return figure, axes

    monkeypatch.setattr(plots_module, "_new_figure", new_figure)
    paths = write_report(pareto_report, tmp_path)
    device = {"pareto_accuracy_vs_flash", "pareto_accuracy_vs_ram"}
    assert set(paths.plots) == BASE_PLOTS | PARETO_PLOTS | device
    for name in device:
        assert_png(paths.plots[name])
    assert sorted(lines) == [(3000.0, "budget 3,000 bytes (tflm)"),
                             (20000.0, "budget 20,000 bytes (tflm)")]
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "![validation accuracy vs flash, the target's budget dashed]" \
           "(pareto_accuracy_vs_flash.png)" in markdown
    assert "(pareto_accuracy_vs_ram.png)" in markdown


def test_device_plots_only_where_measured(pareto_report, tmp_path):
    assert _pareto_plots.plot_names(pareto_report["pareto"]) == _pareto_plots.PLOT_NAMES
    pareto_report["pareto"]["trials"][0]["metrics"]["flash_bytes"] = 6_200
    paths = write_report(pareto_report, tmp_path)
    assert set(paths.plots) == BASE_PLOTS | PARETO_PLOTS | {"pareto_accuracy_vs_flash"}
    assert "pareto_accuracy_vs_ram" not in paths.markdown.read_text(encoding="utf-8")


def test_front_table_says_which_models_fit_the_target(pareto_report, report_markdown,
                                                      table_row, markdown_section):
    _on_tflm(pareto_report["pareto"])
    markdown = markdown_section(report_markdown(pareto_report), "Pareto front")
    assert "| flash (bytes) | RAM (bytes) | fits tflm |" in markdown
    # 00: 6,200 <= 20,000 and 1,900 <= 3,000; 03: both over (a front drawn as given).
    assert table_row(markdown, "00").split(" | ")[6:9] == ["6,200", "1,900", "yes"]
    assert table_row(markdown, "03").split(" | ")[8] == (
        "no: flash 31,000 > 20,000; RAM 3,400 > 3,000")


def test_fits_target_cell():
    from keras_autoopt.report._pareto_report import fits_target

    target = {"name": "tflm", "flash_bytes": 100, "ram_bytes": None}
    assert fits_target({"flash_bytes": 100}, target) == "yes"  # equal to the budget fits
    assert fits_target({"flash_bytes": 101, "ram_bytes": 10**9}, target) == "no: flash 101 > 100"
    assert fits_target({"target_runs": 0.0}, target) == "no: does not run on tflm"
    assert fits_target({"flash_bytes": float("nan")}, target) == "yes"  # not measured
    assert fits_target({"flash_bytes": 10**9}, None) == "-"


# --- report.md ----------------------------------------------------------------------


def test_markdown_pareto_section(
    pareto_report, fast_plots, table_row, markdown_section, report_markdown
):
    markdown = report_markdown(pareto_report)
    # After the trials, before the exported models.
    assert markdown.index("\n## Trials\n") < markdown.index("\n## Pareto front\n")
    assert markdown.index("\n## Pareto front\n") < markdown.index("\n## Exported models\n")
    section = markdown_section(markdown, "Pareto front")

    assert "| objectives | val_accuracy (max), gzip_bytes (min) |" in section
    assert "| oracle | nsga2 |" in section
    assert "| constraints | max_size_bytes 50,000 |" in section  # only the limits that are set
    for field, count in [
        ("trials", 7),
        ("completed", 5),
        ("rejected before training", 1),
        ("failed", 1),
        ("infeasible", 1),
        ("on the front", 3),
    ]:
        assert f"| {field} | {count} |" in section
    assert "feasibility not measured" not in section
    assert HYPERVOLUME_LINE in section

    assert FRONT_HEADER in section
    for trial_id, row in FRONT_ROWS.items():
        assert table_row(section.split("### Rejected")[0], trial_id) == row
    assert "| 02 |" not in section  # dominated: neither on the front nor rejected

    assert "![validation accuracy vs gzip size, Pareto front highlighted]" in section
    assert "(pareto_accuracy_vs_gzip.png)" in section
    assert "(pareto_accuracy_vs_latency.png)" in section

    rejected = section.split("### Rejected and failed trials\n", 1)[1]
    assert "| trial | status | outcome | reason |" in rejected
    assert table_row(rejected, "04") == (
        "| 04 | COMPLETED | infeasible | size_bytes 61,240 > max_size_bytes 50,000 |"
    )
    assert table_row(rejected, "05") == (
        "| 05 | FAILED | rejected before training | estimated int8 size 120,512 bytes > "
        "max_size_bytes 50,000 |"
    )
    assert table_row(rejected, "06") == "| 06 | FAILED | failed | NaN loss at epoch 2 |"


def test_markdown_front_columns_follow_the_data(
    pareto_report, fast_plots, table_row, markdown_section, report_markdown
):
    pareto = pareto_report["pareto"]
    # A third objective without a column of its own, and no compression hyperparameters.
    pareto["objectives"].append({"name": "energy_mj", "direction": "min"})
    pareto["reference"].append(5.125)
    for trial in pareto["trials"]:
        trial["hyperparameters"] = {}
        trial["metrics"]["energy_mj"] = 1.5
    pareto["constraints"] = {"max_params": None}
    pareto["trials"][1]["feasible"] = None
    pareto["front"] = ["00", "03"]
    section = markdown_section(report_markdown(pareto_report), "Pareto front")
    assert (
        "| trial | val accuracy (%) | gzip (bytes) | size (bytes) | latency (µs) | params "
        "| energy_mj |"
    ) in section
    assert table_row(section, "00") == "| 00 | 95.12 | 4,210 | 6,200 | 2.8 | 3,100 | 1.5 |"
    assert "| constraints | none set |" in section
    assert "| feasibility not measured | 1 |" in section
    assert "(val_accuracy 0.80, gzip_bytes 52,000, energy_mj 5.125)" in section


def test_markdown_empty_front_and_no_rejected(
    pareto_report, fast_plots, markdown_section, report_markdown
):
    pareto = pareto_report["pareto"]
    pareto["trials"] = pareto["trials"][:4]
    pareto["front"] = []
    pareto["hypervolume"] = 0.0
    section = markdown_section(report_markdown(pareto_report), "Pareto front")
    assert "_No trial is on the front: no trial completed and met the constraints._" in section
    assert "_Every trial completed and met the constraints._" in section
    assert "Hypervolume: 0.0000, measured from the reference point" in section


def test_rejected_table_is_capped(pareto_report, fast_plots, report_markdown):
    pareto = pareto_report["pareto"]
    pareto["trials"] += [
        ParetoTrial(
            trial_id=f"r{index:02d}", status="FAILED", rejected=True, reason="x" * 300,
            feasible=None, metrics={}, hyperparameters={},
        ).model_dump()
        for index in range(12)
    ]
    rejected = report_markdown(pareto_report).split("### Rejected and failed trials\n")[1]
    rejected = rejected.split("\n## ", 1)[0]
    rows = [line for line in rejected.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 10  # the header and ten trials
    assert "\n... and 5 more.\n" in rejected  # 3 + 12 trials left out
    assert "| r06 | FAILED | rejected before training | " + "x" * 199 + "… |" in rejected


def test_pareto_extra_keys_are_listed_and_kept(pareto_report, tmp_path, fast_plots):
    pareto_report["pareto"]["generations"] = 4
    paths = write_report(pareto_report, tmp_path)
    assert "| generations | 4 |" in paths.markdown.read_text(encoding="utf-8")
    assert json.loads(paths.json.read_text())["pareto"]["generations"] == 4


def test_report_without_pareto_is_unchanged(report, tmp_path):
    paths = write_report(report, tmp_path)
    assert set(paths.plots) == BASE_PLOTS
    assert "Pareto" not in paths.markdown.read_text(encoding="utf-8")
    assert not any(name.startswith("pareto") for name in map(str, tmp_path.iterdir()))


# --- validation ---------------------------------------------------------------------


def _set(path, value):
    def mutate(pareto):
        target = pareto
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda p: p.pop("front"),
            "Received: report['pareto'] without 'front'; expected keys ['constraints', "
            "'front', 'hypervolume', 'objectives', 'oracle', 'reference', 'trials'] "
            "(extra keys are allowed).",
        ),
        (
            _set(("objectives", 1, "direction"), "minimize"),
            "Received: report['pareto']['objectives'][1]['direction']='minimize' (str); "
            "expected one of ('max', 'min').",
        ),
        (
            lambda p: p["front"].append("99"),
            "Received: report['pareto']['front'][3]='99' (str); expected the trial_id of a "
            "trial in report['pareto']['trials'].",
        ),
        (
            lambda p: p["front"].append("04"),
            "Received: report['pareto']['front'][3]='04', a trial with status='COMPLETED', "
            "feasible=False and rejected=False; expected the id of a COMPLETED, feasible, not "
            "rejected trial (only those can be on the front).",
        ),
        (
            lambda p: p["front"].insert(0, "06"),
            "Received: report['pareto']['front'][0]='06', a trial with status='FAILED', "
            "feasible=None and rejected=False; expected the id of a COMPLETED, feasible, not "
            "rejected trial (only those can be on the front).",
        ),
        (
            _set(("reference",), [0.8]),
            "Received: report['pareto']['reference']=[0.8] (list) with 1 value(s); expected "
            "one value per objective (2: ['val_accuracy', 'gzip_bytes']).",
        ),
        (
            _set(("hypervolume",), -0.5),
            "Received: report['pareto']['hypervolume']=-0.5 (float); expected a finite, "
            "non-negative float.",
        ),
        (
            _set(("objectives",), []),
            "Received: report['pareto']['objectives']=[] (list); expected a non-empty list of "
            "{'name': str, 'direction': 'max' | 'min'}.",
        ),
        (
            _set(("objectives", 1, "name"), "val_accuracy"),
            "Received: report['pareto']['objectives'][1]['name']='val_accuracy' (str); "
            "expected a unique objective name (report['pareto']['objectives'][0]['name'] has "
            "it already).",
        ),
        (
            _set(("constraints", "max_size_bytes"), "50kB"),
            "Received: report['pareto']['constraints']['max_size_bytes']='50kB' (str); "
            "expected a finite, non-negative number or None (no limit).",
        ),
        (
            _set(("trials", 2, "trial_id"), "01"),
            "Received: report['pareto']['trials'][2]['trial_id']='01' (str); expected a unique "
            "trial id (report['pareto']['trials'][1]['trial_id'] has it already).",
        ),
        (
            _set(("trials", 0, "feasible"), "yes"),
            "Received: report['pareto']['trials'][0]['feasible']='yes' (str); expected a bool "
            "or None (not measured).",
        ),
        (
            _set(("trials", 0, "metrics", "gzip_bytes"), "4 KB"),
            "Received: report['pareto']['trials'][0]['metrics']['gzip_bytes']='4 KB' (str); "
            "expected a float or None (NaN allowed).",
        ),
        (
            _set(("reference",), [0.8, math.inf]),
            "Received: report['pareto']['reference']=[0.8, inf] (list); expected a list of "
            "finite floats, one per objective.",
        ),
    ],
)
def test_pareto_is_validated(pareto_report, tmp_path, mutate, message):
    mutate(pareto_report["pareto"])
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate_report(pareto_report)
    with pytest.raises(ValueError, match=re.escape(message)):
        write_report(pareto_report, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written


def test_valid_pareto_passes(pareto_report):
    pareto = copy.deepcopy(pareto_report["pareto"])
    pareto["trials"][0]["status"] = "completed"  # any case, as elsewhere in the report
    pareto_report["pareto"] = pareto
    assert validate_report(pareto_report) is None


def test_front_table_shows_what_the_target_measured(pareto_report, fast_plots, table_row,
                                                     markdown_section, report_markdown):
    import copy

    report = copy.deepcopy(pareto_report)
    for trial in report["pareto"]["trials"]:
        if trial["trial_id"] in ("00", "01"):  # front trials measured on a tflm target
            trial["metrics"].update(flash_bytes=6200, ram_bytes=10032, macs=1_140_000)
    section = markdown_section(report_markdown(report), "Pareto front")
    assert ("| params | flash (bytes) | RAM (bytes) | MACs | sparsity |") in section
    front = section.split("### Rejected")[0]
    assert table_row(front, "00").startswith(
        "| 00 | 95.12 | 4,210 | 6,200 | 2.8 | 3,100 | 6,200 | 10,032 | 1,140,000 | 0.5 |")
    assert table_row(front, "03").startswith(
        "| 03 | 98.66 | 20,480 | 31,000 | 5.7 | 21,000 | n/a | n/a | n/a | 0.0 |")
