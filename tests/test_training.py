"""History, the training loop, the plotting helpers, seeding and the benchmark's measurement code."""

from __future__ import annotations

import numpy as np
import pytest

from companion.history import History


def test_history_records_series_and_reports_unknown_keys():
    h = History("run")
    h.log(1, loss=2.0)
    h.log(2, loss=1.5, val_accuracy=0.5)
    steps, losses = h.series("loss")
    np.testing.assert_array_equal(steps, [1, 2])
    np.testing.assert_array_equal(losses, [2.0, 1.5])
    assert h.last("val_accuracy") == 0.5 and "loss" in h and h.keys() == ["loss", "val_accuracy"]
    with pytest.raises(KeyError, match="accuracy"):
        h.series("accuracy")
    with pytest.raises(ValueError):
        h.log(3)


def test_train_classifier_learns_a_separable_problem_and_records_history():
    torch = pytest.importorskip("torch")
    from companion import optim
    from companion.training import accuracy, mlp, train_classifier

    torch.manual_seed(0)
    x = torch.randn(512, 2)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = mlp((2, 16, 2))
    before = accuracy(model, x, y)
    history = train_classifier(model, optim.adam(0.02), x, y, x_val=x, y_val=y, epochs=5, batch_size=32, progress=False)
    assert history.last("val_accuracy") > 0.95 > before - 0.3
    assert len(history.series("loss")[0]) == 5 * 16
    assert history.series("loss")[1][-16:].mean() < history.series("loss")[1][:16].mean()


def test_train_classifier_stops_and_records_divergence():
    torch = pytest.importorskip("torch")
    from companion import optim
    from companion.training import mlp, train_classifier

    torch.manual_seed(0)
    x, y = torch.randn(256, 4) * 100, torch.randint(0, 3, (256,))
    history = train_classifier(mlp((4, 32, 3)), optim.sgd(1e6), x, y, epochs=3, progress=False)
    assert "diverged_at_step" in history.meta
    assert len(history.series("loss")[0]) == history.meta["diverged_at_step"]


def test_training_helpers_reject_bad_input():
    torch = pytest.importorskip("torch")
    from companion import optim
    from companion.training import as_tensors, mlp, train_classifier

    with pytest.raises(ValueError, match="activation"):
        mlp((4, 2), activation="gelu-ish")
    with pytest.raises(ValueError, match="sizes"):
        mlp((4,))
    with pytest.raises(ValueError, match="lengths"):
        as_tensors(np.zeros((3, 2)), np.zeros(2))
    x, y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="epochs"):
        train_classifier(mlp((2, 2)), optim.sgd(0.1), x, y, epochs=0, progress=False)
    with pytest.raises(TypeError, match="optimizer"):
        train_classifier(mlp((2, 2)), "adam", x, y, progress=False)


def test_plot_histories_draws_one_line_per_history():
    import matplotlib

    matplotlib.use("Agg")
    from companion.plotting import plot_histories, use_course_style

    use_course_style()
    a, b = History("a"), History("b")
    for step in range(1, 11):
        a.log(step, loss=1 / step, seconds=0.1 * step)
        b.log(step, loss=2 / step, seconds=0.2 * step)
    ax = plot_histories({"a": a, "b": b}, x="seconds", logy=True, title="t", smooth=3)
    assert len(ax.lines) == 2 and ax.get_xlabel().startswith("wall-clock")
    assert ax.lines[1].get_xdata()[-1] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="x"):
        plot_histories([a], x="epoch")


def test_seed_everything_makes_numpy_and_torch_repeat():
    torch = pytest.importorskip("torch")
    from companion.reproducibility import seed_everything

    seed_everything(3)
    first = (np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert (np.random.rand(), torch.rand(1).item()) == first
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_optimizer_benchmark_measures_both_optimizers():
    pytest.importorskip("torch")
    from companion.benchmarks.optim import bench_optim

    result = bench_optim(parameters=20_000, repeats=3, warmup=1, device="cpu")
    assert result["parameters"] > 19_000
    assert result["reference_ms"] > 0 and result["torch_ms"] > 0
    q1, q3 = result["ratio_quartiles"]  # the median of the per-pair ratios lies between their quartiles
    assert 0 < q1 <= result["ratio"] <= q3


def test_benchmark_entry_point_runs_by_name_and_exits_non_zero_on_a_missed_target(capsys):
    pytest.importorskip("torch")
    from companion import bench
    from companion.benchmarks import BENCHMARKS

    small = ["--parameters", "20000", "--repeats", "3", "--device", "cpu"]
    assert bench.main(["optim", *small, "--target", "1000"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert bench.main(["optim", *small, "--target", "1e-9"]) == 1  # no step takes zero time: the target fails
    assert "FAIL" in capsys.readouterr().out
    assert bench.main(["no-such-benchmark"]) == 2
    assert bench.main(["--list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in BENCHMARKS)
    with pytest.raises(ValueError, match="benchmark"):
        bench.run("nope")


def test_bench_all_writes_each_verdict_output_and_minutes_to_json(tmp_path, monkeypatch, capsys):
    import json

    from companion import bench

    monkeypatch.setattr(bench, "BENCHMARKS", {"fast": "a benchmark that meets its target",
                                              "slow": "one that misses it", "broken": "one that raises"})

    def fake_run(name, argv=()):
        if name == "broken":
            raise RuntimeError("no GPU")
        print(f"{name}: measured 1.23x")
        return 0 if name == "fast" else 1

    monkeypatch.setattr(bench, "run", fake_run)
    assert bench.main(["all", "--json", str(tmp_path / "out" / "results.json")]) == 1
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    records = {r["name"]: r for r in result["benchmarks"]}
    assert [r["passed"] for r in result["benchmarks"]] == [True, False, False]
    assert records["fast"]["output"] == "fast: measured 1.23x\n" and records["fast"]["what"].startswith("a benchmark")
    assert "RuntimeError: no GPU" in records["broken"]["output"]
    assert all(r["minutes"] >= 0 for r in records.values()) and result["cpus"] >= 1
    assert "measured 1.23x" in capsys.readouterr().out  # still printed as it runs
    assert bench.main(["all", "--jsn", "x"]) == 2
