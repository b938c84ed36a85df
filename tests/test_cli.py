"""The ``sktilt`` command: outputs exist and agree with each other; bad input fails cleanly."""

import json

import numpy as np
import pandas as pd
import pytest

from sktilt.tilt import quantile_budget
from sktilt.cli import build_parser, main


def test_help_explains_each_option(capsys):
    for command, options in {"energy-peaks": ["--quantile", "--data", "--out"],
                             "digits": ["--label", "--budgets"],
                             "weinberg": ["--n-jobs", "--n-obs"]}.items():
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args([command, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        for option in options:
            assert option in text


@pytest.mark.parametrize("argv, message", [
    (["energy-peaks", "--quantile", "2"], "--quantile must be a tail fraction"),
    (["energy-peaks", "--n-weeks", "0"], "positive integer"),
    (["digits", "--budgets", "1,x"], "--budgets must be comma-separated"),
    (["digits", "--label", "12"], "invalid choice"),
    (["digits", "--budgets", "nan"], "--budgets must all be finite"),
    (["digits", "--budgets", "1,-2"], "--budgets must all be finite and > 0"),
    (["weinberg", "--seed", "-1"], "--seed must be an integer"),
    (["weinberg", "--seed", "x"], "--seed must be an integer"),
    (["energy-peaks", "--device", "cuda:7"], "--device='cuda:7'"),
    (["energy-peaks", "--device", "gpu!"], "is not a torch device"),
    (["digits", "--threads", "-2"], "--threads must be a non-negative integer"),
    (["digits", "--threads", "two"], "--threads must be a non-negative integer"),
    (["energy-peaks", "--max-energy", "mean"], "--max-energy must be 'median' or a positive"),
    (["energy-peaks", "--max-energy", "-5"], "--max-energy must be 'median' or a positive"),
    (["energy-peaks", "--max-energy", "0"], "--max-energy must be 'median' or a positive"),
    (["energy-peaks", "--max-energy", "inf"], "--max-energy must be 'median' or a positive"),
    (["weinberg", "--n-jobs", "0"], "--n-jobs must be a non-zero integer"),
    (["weinberg", "--n-jobs", "two"], "--n-jobs must be a non-zero integer"),
    (["energy-peaks", "--data", "no/such/meters.csv"], "--data: no such file"),
    (["energy-peaks", "--unit", "MWh"], "invalid choice: 'MWh'"),
    (["energy-peaks", "--layout", "tall"], "invalid choice: 'tall'"),
])
def test_bad_arguments_exit_with_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_max_energy_parses_median_or_kwh():
    parse = build_parser().parse_args
    assert parse(["energy-peaks"]).max_energy is None
    assert parse(["energy-peaks", "--max-energy", "median"]).max_energy == "median"
    assert parse(["energy-peaks", "--max-energy", "812.5"]).max_energy == 812.5


def test_max_energy_below_every_week_stops_naming_it(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["energy-peaks", "--n-weeks", "50", "--max-energy", "1", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--max-energy" in err and "leaves 0 of 50 weeks" in err
    assert not (out / "vae.pt").exists()  # stopped before training


def test_weekly_energy_pickles_and_sums_the_curves():
    import pickle

    import torch

    from sktilt.apps.energy import WeeklyEnergy

    x = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 1.0]])
    g = pickle.loads(pickle.dumps(WeeklyEnergy(unit=2.0)))
    assert torch.allclose(g(x), torch.log(torch.tensor([3.0, 1.0])))
    assert torch.allclose(WeeklyEnergy(log=False)(x), torch.tensor([6.0, 2.0]))


def test_version(capsys):
    import sktilt

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"sktilt {sktilt.__version__}"


def test_unreadable_data_fails_at_parse_time_naming_the_option(tmp_path, capsys):
    for text, message in [("not,a,meter\nfile,at,all\n", "the first column of"),
                          ("timestamp\n2024-01-01 00:00\n", "needs a header and rows"),
                          ("", "cannot read")]:
        bad = tmp_path / "meters.csv"
        bad.write_text(text)
        with pytest.raises(SystemExit) as exc:
            main(["energy-peaks", "--data", str(bad), "--out", str(tmp_path / "o")])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "argument --data: --data: " in err and message in err, err
        assert not (tmp_path / "o").exists()


def _meter_frame(n_meters=4, weeks=3):
    index = pd.date_range("2024-01-01", periods=24 * 7 * weeks * 4, freq="15min")
    rng = np.random.default_rng(0)
    return pd.DataFrame({f"m{i}": rng.gamma(2.0, 0.3, len(index)) for i in range(n_meters)},
                        index=pd.Index(index, name="timestamp"))


@pytest.mark.parametrize("meters", ["named", "numbered"])
def test_energy_data_long_layout_and_kwh_per_interval(tmp_path, meters):
    # The same readings, as kW in a wide file and as kWh per 15 min in a long one,
    # give the same weekly curves; the long layout is detected, or chosen by --layout.
    from sktilt.apps.energy import load_data

    kw = _meter_frame()
    wide = tmp_path / "wide.csv"
    kw.to_csv(wide)
    long = (kw / 4).rename(columns=lambda c: c if meters == "named" else int(c[1:]) + 100)
    long = long.stack().rename("kwh").rename_axis(["timestamp", "meter"]).reset_index()
    path = tmp_path / "long.csv"
    long.to_csv(path, index=False)
    X_wide, layout = load_data(wide, households=2)
    assert layout == "wide" and X_wide.shape == (3 * 2, 168)
    X_long, layout = load_data(path, unit="kWh", households=2)
    assert layout == "long"
    np.testing.assert_allclose(X_long, X_wide, rtol=1e-5)
    assert load_data(path, layout="long", unit="kWh", households=2)[1] == "long"
    # read as kW, the same file is 4x too low; as wide, the meter column is no reading
    np.testing.assert_allclose(load_data(path, households=2)[0], X_wide / 4, rtol=1e-5)
    with pytest.raises(ValueError, match=r"--data .*wide layout"):
        load_data(path, layout="wide", unit="kWh", households=2)
    with pytest.raises(ValueError, match="--households"):
        load_data(wide, households=5)  # 4 meters


def test_cli_options_reach_the_data_reader(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("timestamp,meter,value\n2024-01-01 00:00,a,1.0\n")
    args = build_parser().parse_args(["energy-peaks", "--data", str(path), "--layout", "long",
                                      "--unit", "kWh"])
    assert (args.data, args.layout, args.unit) == (path, "long", "kWh")
    args = build_parser().parse_args(["energy-peaks"])
    assert (args.data, args.layout, args.unit) == (None, "auto", "kW")
    assert build_parser().parse_args(["weinberg", "--n-jobs", "-1"]).n_jobs == -1


def test_energy_peaks_outputs_are_consistent(tmp_path, capsys, monkeypatch):
    import torch

    from sktilt.apps import energy

    set_threads = []
    monkeypatch.setattr(torch, "set_num_threads", set_threads.append)
    monkeypatch.setattr(energy, "_N_TRUTH", 4000)  # the truth check's fresh weeks
    out = tmp_path / "energy"
    argv = ["energy-peaks", "--n-weeks", "400", "--epochs", "8", "--quantile", "0.05",
            "--n-scenarios", "200", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert set_threads == [1]  # the command's default (--threads 1)
    for name in ("summary.json", "scenarios.csv", "curves.png", "peaks.png", "pareto.png",
                 "vae.json", "vae.pt"):
        assert (out / name).stat().st_size > 0
    s = json.loads((out / "summary.json").read_text())
    scenarios = np.loadtxt(out / "scenarios.csv", delimiter=",", skiprows=1)
    assert scenarios.shape == (200, 168) and (scenarios > 0).all()
    header = (out / "scenarios.csv").read_text().split("\n", 1)[0].split(",")
    assert header[:2] == ["Mon_00h_kW", "Mon_01h_kW"] and header[-1] == "Sun_23h_kW"
    assert len(set(header)) == 168
    # scenarios come from the model's tail above the data's top-rho peak
    assert (scenarios.max(1) > s["peak_threshold_kw"]).all()
    assert s["peak_kw"]["scenarios"] == pytest.approx(scenarios.max(1).mean(), rel=1e-4)
    check = s["scenario_check"]
    assert check["n_data_top_weeks"] == 20 and 0 <= check["peak_ks_vs_data_top"] <= 1
    assert s["kl_budget"] == pytest.approx(quantile_budget(0.05))
    assert abs(s["kl"] - s["kl_budget"]) < 0.1 * s["kl_budget"]
    assert s["peak_kw"]["tuned"] > s["peak_kw"]["base"]
    assert s["weekly_kwh"]["tuned"] > s["weekly_kwh"]["base"]
    assert 0 <= s["p_peak_above_threshold"] < 1 and s["p_peak_above_threshold_se"] >= 0
    assert 0 <= s["base_peak_ks_vs_data"] <= 1
    assert "max_energy" not in s and s["truth_check"]["n_truth_weeks"] == 4000
    assert 0 <= s["truth_check"]["peak_ks_vs_truth"] <= 1
    printed = capsys.readouterr().out
    assert f"{s['beta']:.3f}" in printed
    # (that a second run loads the cached VAE is tested on cached_fit in test_apps_common)


def test_energy_peaks_max_energy_meets_its_constraint(tmp_path, capsys, monkeypatch):
    # The planner's case on a tiny run: the constraint's value, target and check, and
    # the scenarios checked against fresh weeks of the generator, all in summary.json.
    # A cheaper tuner (as in the meter test below) keeps it short.
    import functools

    from sktilt import BoltzmannTuner
    from sktilt.apps import energy

    monkeypatch.setattr(energy, "_N_TRUTH", 4000)
    monkeypatch.setattr(energy, "BoltzmannTuner", functools.partial(
        BoltzmannTuner, max_iter=300, n_reference_samples=20_000))
    out = tmp_path / "energy"
    argv = ["energy-peaks", "--n-weeks", "400", "--epochs", "8", "--quantile", "0.05",
            "--n-scenarios", "100", "--max-energy", "median", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    scenarios = np.loadtxt(out / "scenarios.csv", delimiter=",", skiprows=1)
    m = s["max_energy"]
    data = energy.make_load_curves(400, n_households=10, random_state=0)
    cap = float(np.median(data.sum(1)))
    assert m["cap_kwh"] == pytest.approx(cap, rel=1e-6)
    # E_q log(weekly energy / cap) <= 0 within the tuner's tolerance (2 % of the spread
    # of log energy under p, or 2 standard errors)
    assert m["target"] == 0 and m["met"] and m["value"] <= m["tolerance"] < 0.05
    assert m["tuned_geometric_mean_kwh"] == pytest.approx(cap * np.exp(m["value"]))
    assert m["multiplier"] <= 0
    assert s["kl_budget"] == pytest.approx(quantile_budget(0.05 * m["data_share_below_cap"]))
    # every scenario is in the planner's event: energy <= cap and peak above threshold
    assert scenarios.shape == (100, 168)
    assert (scenarios.sum(1) <= cap * (1 + 1e-5)).all() and m["scenarios_share_below_cap"] == 1
    assert (scenarios.max(1) > s["peak_threshold_kw"] * (1 - 1e-5)).all()
    assert 0 < m["tuned_share_below_cap"] < 1
    t = s["truth_check"]
    assert t["n_truth_weeks"] == 4000 and t["n_true_event_weeks"] > 0
    assert 0 <= t["peak_ks_vs_truth"] <= 1 and 0 <= t["share_of_true_top_weeks_below_cap"] <= 1
    printed = capsys.readouterr().out
    assert "constraint E_q log(weekly kWh / cap)" in printed and "NOT met" not in printed


def test_energy_peaks_reads_meter_csv(tmp_path, monkeypatch):
    # The reading of the CSV is under test here; the tuner's own fidelity is tested above,
    # so a cheaper tuner keeps the suite short.
    import functools

    from sktilt import BoltzmannTuner
    from sktilt.apps import energy

    monkeypatch.setattr(energy, "BoltzmannTuner", functools.partial(
        BoltzmannTuner, max_iter=300, n_reference_samples=20_000))
    index = pd.date_range("2024-01-01", periods=24 * 7 * 12, freq="h")
    rng = np.random.default_rng(0)
    hours = index.hour.to_numpy()
    frame = pd.DataFrame({f"m{i}": 0.3 + 0.5 * np.exp(-((hours - 19) ** 2) / 4)
                          + rng.gamma(1.0, 0.1, len(index)) for i in range(20)}, index=index)
    frame.index.name = "timestamp"
    path = tmp_path / "meters.csv"
    frame.to_csv(path)
    out = tmp_path / "o"
    assert main(["energy-peaks", "--data", str(path), "--households", "2", "--epochs", "5",
                 "--n-scenarios", "50", "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["n_curves"] == 12 * 10  # 12 weeks x 10 groups of 2 meters
    assert s["scenario_check"]["n_scenarios"] == 50


def test_digits_command_conditions_on_the_label(tmp_path):
    out = tmp_path / "digits"
    assert main(["digits", "--label", "0", "--budgets", "1.5", "--epochs", "40",
                 "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    (row,) = s["budgets"]
    assert abs(row["kl"] - 1.5) < 0.15
    assert row["fraction_label"] > s["base_fraction_label"] + 0.2
    assert (out / "grid.png").stat().st_size > 0


def test_weinberg_command_writes_consistent_summary(tmp_path):
    out = tmp_path / "wb"
    assert main(["weinberg", "--n-obs", "500", "--max-iter", "20", "--n-jobs", "1",
                 "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    from sktilt.datasets import weinberg_c

    assert s["c_fit"] == pytest.approx(weinberg_c(*s["theta"]))
    assert s["c_fit_minus_mle_in_se"] == pytest.approx((s["c_fit"] - s["c_mle"]) / s["c_mle_se"])
    assert s["n_simulations"] > 0
    assert isinstance(s["converged"], bool) and 0 < s["two_sample_p_value"] <= 1
    assert (out / "trajectory.png").stat().st_size > 0 and (out / "fit.png").stat().st_size > 0


def test_version_does_not_import_torch():
    # `sktilt --version` took 3-10 s when the package imported torch up front.
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\nfrom sktilt.cli import main\ntry:\n    main(['--version'])\n"
            "except SystemExit:\n    pass\nprint(sorted({'torch', 'pandas', 'sklearn'} & "
            "set(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0].startswith("sktilt ")
    assert proc.stdout.strip().endswith("[]")
