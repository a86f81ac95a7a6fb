import csv
import json

import h5py
import numpy as np
import pytest

from benchmark.data.cache import FeatureCache
from benchmark.data.split import Split
from benchmark.encoders import registry
from benchmark.encoders.pixels import Pixels
from benchmark.core.errors import BenchError
from benchmark.pipeline.extract import extract
from benchmark.probe import ProbeConfig, run_probe, validation_split
from conftest import class_images, console, invoke


def splits(n_train=200, n_test=50):
    x, y = class_images(n_train // 10, seed=0)
    xt, yt = class_images(n_test // 10, seed=1)
    return {"train": Split(x, y), "test": Split(xt, yt)}


class Exploding(Pixels):
    """Fails half-way through extraction, as a killed run would."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def transform(self, images):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return super().transform(images)


def test_interrupted_extraction_leaves_nothing_trusted(tmp_path):
    cache = FeatureCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        extract(Exploding(), "toy", splits(), cache, batch_size=64)
    assert not list((tmp_path / "features").glob("*"))
    got = extract(Pixels(), "toy", splits(), cache, batch_size=64)
    assert not got.cached and got.features["train"].n_rows == 200


def test_second_run_reads_the_cache(tmp_path):
    cache = FeatureCache(tmp_path)
    first = extract(Pixels(), "toy", splits(), cache, batch_size=64)
    second = extract(Pixels(), "toy", splits(), cache, batch_size=64)
    assert second.cached and second.read_s >= 0
    np.testing.assert_array_equal(first.features["test"].read(), second.features["test"].read())
    np.testing.assert_allclose(second.features["train"].read()[0], splits()["train"].images[0].ravel() / 127.5 - 1,
                               atol=1e-6)


def test_corrupt_or_truncated_cache_is_rebuilt(tmp_path):
    cache = FeatureCache(tmp_path)
    got = extract(Pixels(), "toy", splits(), cache, batch_size=64)
    path = got.features["train"].path
    path.write_bytes(path.read_bytes()[:5000])  # truncated
    warnings = []
    again = extract(Pixels(), "toy", splits(), cache, batch_size=64, log=warnings.append)
    assert not again.cached and any("ignoring cache file" in w and "unreadable" in w for w in warnings)
    with h5py.File(again.features["test"].path, "r+") as f:
        f.attrs["n_rows"] = 3  # wrong count
    warnings.clear()
    extract(Pixels(), "toy", splits(), cache, batch_size=64, log=warnings.append)
    assert any("row count mismatch" in w for w in warnings)


def test_fingerprint_separates_encoders_and_data(tmp_path):
    cache = FeatureCache(tmp_path)
    extract(Pixels(), "toy", splits(), cache, batch_size=64)
    other = splits()
    other["test"] = Split(other["test"].images[::-1].copy(), other["test"].labels[::-1].copy())
    got = extract(Pixels(), "toy", other, cache, batch_size=64)
    assert not got.cached  # same encoder, different test images: new file
    assert len(list((tmp_path / "features").glob("*.h5"))) == 3


def test_datasets_holding_the_same_images_share_their_features(tmp_path):
    """The cache is keyed by content: cifar10-test1k's training split is cifar10's, so it is extracted once."""
    cache = FeatureCache(tmp_path)
    extract(Pixels(), "cifar10", splits(), cache, batch_size=64)
    other = splits()
    other["test"] = other["test"].subset(np.arange(5))
    got = extract(Pixels(), "cifar10-test1k", other, cache, batch_size=64)
    assert not got.cached and len(list((tmp_path / "features").glob("*.h5"))) == 3  # only the new test split


def test_validation_split_is_stratified_and_seeded():
    labels = np.repeat(np.arange(10), 100)
    fit, val = validation_split(labels, 200, seed=0)
    assert len(val) == 200 and len(fit) == 800 and not set(fit) & set(val)
    assert (np.bincount(labels[val]) == 20).all()
    np.testing.assert_array_equal(val, validation_split(labels, 200, seed=0)[1])
    assert not np.array_equal(val, validation_split(labels, 200, seed=1)[1])


def test_C_selection_reads_only_validation(tmp_path):
    cache = FeatureCache(tmp_path)
    data = splits(300, 100)
    got = extract(Pixels(), "toy", data, cache, batch_size=128)
    config = ProbeConfig(grid=(1e-4, 1e-3, 1e-2))
    without_test = run_probe(got.features["train"], None, 60, 0, config)
    with h5py.File(got.features["test"].path, "r+") as f:
        f["labels"][...] = np.random.default_rng(0).permutation(f["labels"][...])
        f["features"][...] = np.random.default_rng(1).normal(size=f["features"].shape)
    with_test = run_probe(got.features["train"], got.features["test"], 60, 0, config)
    assert (with_test.C, with_test.val_acc, with_test.tried) == (without_test.C, without_test.val_acc, without_test.tried)


def test_probe_learns_and_grid_extends_at_edge(tmp_path):
    cache = FeatureCache(tmp_path)
    got = extract(Pixels(), "toy", splits(300, 100), cache, batch_size=128)
    result = run_probe(got.features["train"], got.features["test"], 60, 0, ProbeConfig(grid=(1e-9, 3e-9)))
    assert result.test_acc >= 75
    assert max(c for c, _ in result.tried) > 1e-8  # best at the top edge: the grid grew upward


def test_flat_start_at_chance_does_not_stop_the_search(monkeypatch):
    """Chance accuracy up to C = 1e-6, then a peak at 1e-4: the search walks the plateau, stops after the peak."""
    import torch

    from benchmark.probe import search as probe
    from benchmark.probe import solver

    y = torch.arange(100) % 10
    curve = {1e-8: 0.1, 1e-7: 0.1, 1e-6: 0.1, 1e-5: 0.6, 1e-4: 0.9, 1e-3: 0.8, 1e-2: 0.8, 1e-1: 0.7}

    starts = []

    class Scripted:  # right on a fixed share of the rows, by C; its weights are C itself
        def __init__(self, config, C):
            self.C, self.fits, self.gap, self.passes_ = C, [], 0.0, 0.0

        def fit(self, X, labels, n_classes, warm_start=None, **kw):
            starts.append(None if warm_start is None else float(warm_start[0][0, 0]))
            self.coef_, self.intercept_ = torch.full((10, 3), self.C), torch.full((10,), self.C)
            return self

        def predict(self, X):
            right = int(curve[self.C] * len(X))
            return torch.cat([y[:right], (y[right:] + 1) % 10])

    monkeypatch.setattr(solver, "make_solver", Scripted)
    X = torch.zeros(100, 3)
    walk = probe.search_C(ProbeConfig(grid=tuple(curve), patience=2), X, y, X, y, 10)
    C, acc, tried = walk.C, walk.accuracy, walk.tried
    assert C == 1e-4 and acc == pytest.approx(90.0)
    assert [c for c, _ in tried] == [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2]  # two without gain, then stop
    # each fit up the grid starts from the last, moved half a secant step through the last two (in log C)
    assert starts[0] is None
    assert starts[1:5] == pytest.approx([1e-8, 1e-7 + 0.5 * (1e-7 - 1e-8), 1e-6 + 0.5 * (1e-6 - 1e-7),
                                         1e-5 + 0.5 * (1e-5 - 1e-6)], rel=1e-5)


def test_each_encoder_brings_its_probe_scaling_unless_told():
    from benchmark.pipeline.run import RunOptions, probe_config

    dcgan, pixels = registry.build("dcgan-random:arch=small"), registry.build("pixels")
    assert probe_config(RunOptions(), dcgan).scale == "none"  # raw, as the original DCGAN code
    assert probe_config(RunOptions(), pixels).scale == "standard"
    told = RunOptions(probe=ProbeConfig(scale="standard"))
    assert probe_config(told, dcgan).scale == "standard"


def test_spec_parsing_and_unknown_encoder():
    assert registry.parse_args("layers=1-4,seed=3") == {"layers": "1-4", "seed": "3"}
    assert registry.parse_args("runs/x") == {"path": "runs/x"}
    assert registry.parse_args("runs/x,layers=1,3,5,seed=2") == {"path": "runs/x", "layers": "1,3,5", "seed": "2"}
    with pytest.raises(BenchError, match="unknown encoder 'nope'.*bench encoders"):
        registry.build("nope")
    with pytest.raises(BenchError, match="pixels:bogus=1"):
        registry.build("pixels:bogus=1")
    assert registry.build("test_pipeline:Exploding").name == "pixels"




def test_cli_run_writes_a_row_and_reuses_cache(cifar_folder, tmp_path):
    out = tmp_path / "runs.csv"
    args = ["run", "cifar10", "--features", "pixels", "--data-dir", str(cifar_folder), "--results", str(out),
            "--val-size", "20"]
    first = invoke(*args)
    assert first.exception is None, first.output
    assert "cifar10 | pixels | full | svm | test" in first.output and "3072 dims" in first.output
    second = invoke(*args)
    assert "features from cache" in second.output
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 2 and rows[0]["data_variant"] == "image-folder" and rows[0]["n_train"] == "120"
    assert rows[0]["C"] == rows[1]["C"] and float(rows[0]["test_acc"]) > 50
    board = invoke("leaderboard", "--results", str(out), "--out", str(tmp_path / "B.md"))
    assert board.exception is None and "| pixels" in (tmp_path / "B.md").read_text()
    page = invoke("leaderboard", "--results", str(out), "--format", "html", "--out", str(tmp_path / "b.html"))
    html = (tmp_path / "b.html").read_text()
    assert page.exception is None and html.startswith("<!doctype html>") and "pixels" in html


@pytest.mark.parametrize("args, message", [
    (["run", "cifar10", "--features", "pixels"], "BENCH_DATA_DIR is unset"),
    (["run", "cifar10", "--features", "nope"], "unknown encoder 'nope'"),
])
def test_cli_errors_are_one_line(args, message, monkeypatch, capsys):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    code, _, _, err = console(monkeypatch, capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err


def test_bad_image_error_through_cli(cifar_folder, monkeypatch, capsys):
    (cifar_folder / "cifar10" / "train" / "dog" / "0050.png").write_bytes(b"\x89PNG broken")
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder)
    assert code == 2 and "0050.png: cannot read image" in err.splitlines()[-1] and "Traceback" not in err


def test_draws_are_identical_across_encoders_and_disjoint_from_validation():
    from benchmark.probe.protocols import draw_indices

    labels = np.repeat(np.arange(10), 60)
    pool, val = validation_split(labels, 100, seed=0)
    a = draw_indices(labels, pool, 20, 3, seed=0)
    b = draw_indices(labels, pool, 20, 3, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[1])
    for draw in a:
        assert not set(draw) & set(val) and (np.bincount(labels[draw]) == 20).all()


def test_interval_arithmetic_on_a_known_case():
    from benchmark.probe.protocols import interval95

    # mean 10, sample sd sqrt(8/3) = 1.632993 over n = 4, t(0.975, 3) = 3.182446:
    # half-width 3.1824463 * 1.6329932 / 2 = 2.5984565
    assert abs(interval95([8.0, 10.0, 10.0, 12.0]) - 2.5984565) < 1e-6
    import math

    assert math.isnan(interval95([1.0]))


def test_few_shot_protocol_ignores_test_labels_for_C(tmp_path):
    from benchmark.probe.protocols import FewShot, run_few_shot

    cache = FeatureCache(tmp_path)
    got = extract(Pixels(), "toy", splits(400, 100), cache, batch_size=128)
    config = ProbeConfig(grid=(1e-4, 1e-3, 1e-2))
    setting = FewShot(per_class=10, search_draws=3, test_draws=5)
    first = run_few_shot(got.features["train"], None, setting, 100, 0, config)
    with_test = run_few_shot(got.features["train"], got.features["test"], setting, 100, 0, config)
    assert (first.C, first.tried) == (with_test.C, with_test.tried)
    assert len(with_test.test_accs) == 5 and min(with_test.test_accs) > 50


def _svhn_like(root, n_train=1600, n_test=200):
    """SVHN-format .mat files (labels 1..10, 10 for digit 0) with learnable classes."""
    from scipy.io import savemat

    for name, n, seed in (("train_32x32.mat", n_train, 0), ("test_32x32.mat", n_test, 1)):
        x, y = class_images(n // 10, seed=seed)
        y = np.where(y == 0, 10, y)
        (root / "svhn").mkdir(parents=True, exist_ok=True)
        savemat(root / "svhn" / name, {"X": x.transpose(1, 2, 3, 0), "y": y[:, None].astype(np.uint8)})


def test_svhn_1000_end_to_end(tmp_path):
    from benchmark.probe.protocols import FewShot, draw_indices, run_few_shot

    _svhn_like(tmp_path / "d")
    out = tmp_path / "runs.csv"
    result = invoke("run", "svhn", "--features", "conftest:Quadrants", "--protocol", "svhn-1000", "--data-dir",
                    str(tmp_path / "d"), "--results", str(out), "--val-size", "300")
    assert result.exception is None, result.output
    row = next(csv.DictReader(open(out)))
    assert row["protocol"] == "svhn-1000" and row["draws"] == "100" and row["per_class"] == "100"
    assert "test error" in result.output and "1.96 sd, 100 draws" in result.output

    # the same computation by hand: 10 draws choose C on validation, 100 draws at that C on test
    from benchmark.data.cache import FeatureCache as Cache

    cache = Cache()
    files = {a["split"]: p for p, a in cache.entries()}
    from benchmark.data.cache import CachedFeatures

    train = CachedFeatures(files["train"], 1600, 12, {})
    test = CachedFeatures(files["test"], 200, 12, {})
    r = run_few_shot(train, test, FewShot(100, 10, 100), 300, 0, ProbeConfig())
    assert float(row["C"]) == r.C and max(acc for _, acc in r.tried) == dict(r.tried)[r.C]
    accs = np.asarray(r.test_accs)
    assert abs(float(row["test_acc"]) - accs.mean()) < 1e-3
    assert abs(float(row["test_acc_std"]) - accs.std(ddof=1)) < 1e-3
    labels = train.labels()
    pool, val = validation_split(labels, 300, 0)
    draws = draw_indices(labels, pool, 100, 100, 0)
    assert len(draws) == 100 and all(len(d) == 1000 and not set(d) & set(val) for d in draws[:5])


def test_compare_pairs_draws_and_images(tmp_path):
    from benchmark.probe.compare import compare, paired_draws

    cache = FeatureCache(tmp_path)
    data = splits(400, 100)
    a = extract(Pixels(), "toy", data, cache, batch_size=128).features
    b = extract(registry.build("conftest:Quadrants"), "toy", data, cache, batch_size=128).features
    config = ProbeConfig(grid=(1e-4, 1e-3))
    few = compare((a["train"], a["test"]), (b["train"], b["test"]), "few", 100, 0, (config, config), per_class=10,
                  draws=4)
    assert few.units == "draws" and few.a_wins + few.b_wins <= 4
    assert few.ci95[0] <= few.diff <= few.ci95[1]
    full = compare((a["train"], a["test"]), (a["train"], a["test"]), "full", 100, 0, (config, config))
    assert full.diff == 0 and full.a_wins == full.b_wins == 0
    known = paired_draws([70, 72, 74], [68, 71, 70], "few")
    assert known.diff == pytest.approx(7 / 3) and known.a_wins == 3


def test_solver_benchmark_command(cifar_folder, tmp_path):
    out = tmp_path / "results" / "solvers.csv"
    result = invoke("solvers", "cifar10", "--features", "pixels", "--data-dir", str(cifar_folder),
                    "--rows", "100", "--grid", "1e-4,1e-3", "--out", str(out))
    assert result.exception is None, result.output
    rows = list(csv.DictReader(open(out)))
    assert [r["solver"] for r in rows] == ["torch", "liblinear"]
    assert all(float(r["peak_rss_gb"]) > 0 and r["n_train"] == "100" for r in rows)
    from benchmark.probe.operand import default_precision
    assert rows[0]["precision"] == default_precision("cpu")  # auto: bfloat16 products only where they are native
    runs = tmp_path / "results" / "runs.csv"
    invoke("run", "cifar10", "--features", "pixels", "--data-dir", str(cifar_folder), "--results", str(runs),
           "--val-size", "20")
    invoke("leaderboard", "--results", str(runs), "--out", str(tmp_path / "B.md"))
    text = (tmp_path / "B.md").read_text()
    assert "<!-- bench:solvers:start -->" in text and "vs scikit-learn" in text and "1.0x" in text


def test_solver_speedups_never_span_two_devices(tmp_path):
    from benchmark.report.sections.solvers import solver_table

    case = {"time": "2026-01-01T00:00:00", "dataset": "cifar10", "encoder": "pixels", "probe": "logreg",
            "scale": "none", "n_train": 100, "dims": 3072, "status": "ok", "C": 1e-3, "test_acc": 40.0,
            "search_points": 2, "peak_rss_gb": 1.0}
    rows = [{**case, "solver": "lbfgs", "precision": "float64", "device": "cpu (A, 2 threads)", "fit_s": 100.0},
            {**case, "solver": "torch", "precision": "float32", "device": "cpu (A, 2 threads)", "fit_s": 10.0},
            {**case, "solver": "torch", "precision": "float32", "device": "cpu (B, 2 threads)", "fit_s": 5.0}]
    with open(tmp_path / "solvers.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
    table = solver_table(tmp_path / "solvers.csv")
    line = next(line for line in table.splitlines() if "cpu (B" in line)
    assert "10.0x" in table and "20.0x" not in line and "x |" not in line


def test_results_file_with_older_columns_is_migrated(tmp_path):
    from benchmark.report import results

    path = tmp_path / "runs.csv"
    path.write_text("time,dataset,encoder,test_acc\n2026-01-01T00:00:00,cifar10,pixels,40.1\n")
    results.append({"time": "t2", "dataset": "cifar10", "encoder": "kmeans", "test_acc": 70.0}, path)
    rows = list(csv.DictReader(open(path)))
    assert tuple(rows[0]) == results.COLUMNS
    assert [(r["encoder"], r["test_acc"]) for r in rows] == [("pixels", "40.1"), ("kmeans", "70")]
    path.write_text("time,mystery\n1,2\n")
    with pytest.raises(BenchError, match="mystery.*are not result columns"):
        results.append({"time": "t3"}, path)


def test_leaderboard_tabulates_speed_targets_variants_and_budgets(tmp_path):
    from benchmark.core.files import append_csv
    from benchmark.report import document, results

    folder = tmp_path / "results"
    common = {"dataset": "cifar10", "data_variant": "jpeg-q75-copy", "protocol": "full", "dims": 12288, "C": 1e-4,
              "scale": "none", "solver": "torch", "val_acc": 75.3, "test_acc": 75.9, "draws": 1, "n_train": 50000,
              "n_test": 10000, "extract_s": 77.4, "fit_s": 118.1, "peak_rss_gb": 5.5, "device": "cpu", "gap": 6e-5,
              "search_gap": 9e-4}
    results.append({"time": "t1", "encoder": "dcgan-tinyimagenet-small", **common}, folder / "runs.csv")
    results.append({"time": "t1", "encoder": "dcgan-imagenet:layers=1-4,bn_images=all", **common},
                   folder / "extraction-variants.csv")
    columns = ("time", "case", "path", "commit", "seconds", "target_s", "test_acc", "gap", "load_1min")
    append_csv(folder / "timings.csv", [
        {"time": "t1", "case": "extraction", "path": "old", "commit": "a", "seconds": 390.0, "target_s": 180,
         "test_acc": 75.89, "gap": "", "load_1min": 0.5},
        {"time": "t2", "case": "extraction", "path": "new", "commit": "b", "seconds": 78.0, "target_s": 180,
         "test_acc": 75.93, "gap": 6e-5, "load_1min": 0.5},
        {"time": "t3", "case": "k-means", "path": "old", "commit": "c", "seconds": 800.0, "target_s": 300,
         "test_acc": 73.0, "gap": "", "load_1min": 0.4},
        {"time": "t4", "case": "k-means", "path": "new", "commit": "d", "seconds": 400.0, "target_s": 300,
         "test_acc": 73.1, "gap": 1e-4, "load_1min": 0.4}], columns, "timing")
    document.update(folder / "runs.csv", tmp_path / "B.md")
    text = (tmp_path / "B.md").read_text()
    speed = text[text.index("bench:speed:start"):text.index("bench:speed:end")]
    extraction, kmeans = (next(line for line in speed.splitlines() if line.startswith(f"| {case}"))
                          for case in ("extraction", "k-means"))  # each case's latest pair, from its own invocation
    assert "5.0x" in extraction and "| yes" in extraction and "`a` / `b`" in extraction
    assert "2.0x" in kmeans and "| no" in kmeans and "`c` / `d`" in kmeans
    assert "bn_images=all" in text[text.index("bench:extraction-variants:start"):]
    board = text[text.index("bench:leaderboard:start"):text.index("bench:leaderboard:end")]
    assert "trained here: 52 s on NVIDIA H200, 0.7 M images" in board


def test_bench_limits_stores_the_peaks_that_the_timings_table_sets_each_stage_against(monkeypatch, capsys, tmp_path):
    """Small sizes (one product, a small feature file), so the test measures the plumbing, not the machine."""
    from benchmark.pipeline import limits as measuring
    from benchmark.report import document, results

    monkeypatch.setattr(measuring, "LONG_S", 0.0)
    monkeypatch.setattr(measuring, "HDF5_ROWS", 4096)
    folder = tmp_path / "results"
    ran = console(monkeypatch, capsys, "limits", "--device", "cpu", "--cache-dir", tmp_path / "cache", "--out",
                  folder / "limits.json")
    assert ran.code == 0, ran.err
    machines = json.loads((folder / "limits.json").read_text())["machines"]
    found = next(iter(machines.values()))
    assert set(found["peaks"]) == {"matmul_float32_gflops", "matmul_bfloat16_gflops", "memory_read_gbs",
                                   "hdf5_read_gbs"}
    assert all(value > 0 for value in found["peaks"].values()) and found["machine"]["cores"] >= 1
    assert not list((tmp_path / "cache").rglob("*.h5"))  # the probe file is gone
    results.append({"time": "t1", "dataset": "cifar10", "protocol": "full", "encoder": "pixels", "dims": 3072,
                    "C": 1e-4, "scale": "none", "solver": "torch", "val_acc": 40.0, "test_acc": 40.0, "n_train": 50000,
                    "val_size": 10000, "n_test": 10000, "extract_s": 10.0, "fit_s": 8.0, "search_s": 6.0,
                    "refit_s": 2.0, "search_passes": 100, "refit_passes": 20, "peak_rss_gb": 1.0,
                    "device": found["machine"]["device"], "gap": 1e-4, "search_gap": 1e-4, "probe": "svm"},
                   folder / "runs.csv")
    elsewhere = {"time": "t2", "dataset": "cifar10", "protocol": "full", "encoder": "kmeans", "dims": 6400, "C": 1e-3,
                 "scale": "standard", "solver": "torch", "val_acc": 70.0, "test_acc": 70.0, "n_train": 50000,
                 "val_size": 10000, "n_test": 10000, "extract_s": 10.0, "fit_s": 8.0, "search_s": 7.0, "refit_s": 1.0,
                 "search_passes": 100, "refit_passes": 20, "peak_rss_gb": 1.0, "device": "cpu (Another CPU, 2 threads)",
                 "gap": 1e-4, "search_gap": 1e-4, "probe": "svm"}
    results.append(elsewhere, folder / "runs.csv")  # measured on another machine: no share of these peaks
    document.update(folder / "runs.csv", tmp_path / "B.md")
    text = (tmp_path / "B.md").read_text()
    table = text[text.index("bench:timings:start"):text.index("bench:timings:end")]
    assert "Peaks measured by `bench limits`" in table and "Furthest from its limit" in table
    searched = 100 * 40000 * 3072 * 4 / 1e9  # GB read by the search's passes
    share = searched / 6.0 / found["peaks"]["memory_read_gbs"]
    assert f"6.0 · {searched:,.0f} GB · {share:.0%}" in table
    other = next(line for line in table.splitlines() if "Another CPU" in line)
    assert f"7.0 · {100 * 40000 * 6400 * 4 / 1e9:,.0f} GB " in other and "%" not in other
    # measured there too: both machines' peaks are kept, and each row is set against its own machine's
    another = measuring.machine(measuring.torch.device("cpu"))
    monkeypatch.setattr(measuring, "machine", lambda device: {**another, "device": elsewhere["device"]})
    assert console(monkeypatch, capsys, "limits", "--device", "cpu", "--cache-dir", tmp_path / "cache", "--out",
                   folder / "limits.json").code == 0
    machines = json.loads((folder / "limits.json").read_text())["machines"]
    assert set(machines) == {found["machine"]["device"], elsewhere["device"]}
    assert machines[found["machine"]["device"]] == found
    document.update(folder / "runs.csv", tmp_path / "B.md")
    table = (tmp_path / "B.md").read_text()
    other = next(line for line in table.splitlines() if "Another CPU" in line)
    share = 100 * 40000 * 6400 * 4 / 1e9 / 7.0 / machines[elsewhere["device"]]["peaks"]["memory_read_gbs"]
    assert f"GB · {share:.0%}" in other and table.count("Peaks measured by `bench limits`") == 2
