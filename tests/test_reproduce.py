"""Every number reproducible by a named command: rows carry it, runs.txt lists it, `bench reproduce` reruns it."""

import csv
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import commands as cli
from benchmark.pipeline.reproduce import command_args
from benchmark.report import rows as leaderboard
from conftest import bench, invoke

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "results" / "runs.txt"


def listed() -> list[str]:
    return [line.strip() for line in RUNS.read_text().splitlines() if line.startswith("bench ")]


def normalised(command: str) -> str:
    return shlex.join(["bench", *command_args({"command": command})])


def test_every_leaderboard_row_carries_a_command_listed_in_runs_txt():
    rows = leaderboard.whole_dataset(leaderboard.load_rows(ROOT / "results" / "runs.csv", warn=lambda _: None))
    best = leaderboard.best_rows(rows)
    commands = {normalised(line) for line in listed() if line.startswith("bench run ")}
    assert best["command"].notna().all() and best["commit"].notna().all()
    missing = sorted({normalised(c) for c in best["command"]} - commands)
    assert not missing, f"leaderboard rows whose command is not in results/runs.txt: {missing}"


@pytest.mark.parametrize("line", listed())
def test_every_listed_command_parses(line, monkeypatch):
    monkeypatch.setenv("BENCH_RESULTS", str(ROOT / "results" / "runs.csv"))  # as `bench record` runs them
    args = shlex.split(line.split("|")[0])[1:]
    command = cli.cli.get_command(None, args[0])
    assert command is not None, line
    command.make_context(args[0], args[1:], resilient_parsing=False)  # raises on an unknown option or value


def run_pixels(cifar_folder, out):
    result = invoke("run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder, "--results", out,
                    "--val-size", "20")
    assert result.exit_code == 0, result.output


def reproduce(*args, cwd=None, env=None):
    """`bench reproduce ARGS` in a fresh process (a hostile row must not reach this one's modules)."""
    ran = bench("reproduce", *args, cwd=cwd, env=env)
    return ran.code, ran.out, ran.err


def edit(out, **changes):
    rows = list(csv.DictReader(open(out)))
    rows[0].update(changes)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_reproduce_reruns_a_row_and_says_what_differs(cifar_folder, tmp_path):
    import os

    out = tmp_path / "runs.csv"
    run_pixels(cifar_folder, out)
    row = list(csv.DictReader(open(out)))[0]
    assert row["command"].startswith("bench run cifar10 --features pixels") and row["commit"]
    env = dict(os.environ, BENCH_DATA_DIR=str(cifar_folder))
    code, stdout, _ = reproduce("--results", out, "--encoder", "pixels", "--protocol", "full", env=env)
    assert code == 0 and "reproduced: accuracies within 0.1 points" in stdout, stdout
    assert len(list(csv.DictReader(open(out)))) == 1  # the record is untouched
    edit(out, test_acc="12.5", fingerprint="0000", commit="abc1234")
    code, stdout, _ = reproduce("--results", out, "--row", 1, env=env)
    assert code == 1 and "NOT reproduced" in stdout and "fingerprint differs" in stdout and "abc1234" in stdout


@pytest.mark.parametrize("command, message", [
    ("bench run cifar10 --features 'os:system:command=touch {marker}'", "not imported"),
    ("bench run cifar10 --features evilmod:Enc", "--allow-module evilmod"),
    ("bench run cifar10 --features=evilmod:Enc", "--allow-module evilmod"),
    ("rm -rf {marker}", "only `bench run` commands are rerun"),
    ("bench run cifar10 --features pixels; touch {marker}", "unexpected extra argument"),
])
def test_a_doctored_command_runs_nothing(command, message, cifar_folder, tmp_path):
    out, marker = tmp_path / "runs.csv", tmp_path / "MARKER"
    run_pixels(cifar_folder, out)
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').close()  # runs on import\n"
                                         "from benchmark.encoders.base import Encoder\nclass Enc(Encoder): pass\n")
    edit(out, command=command.format(marker=marker))
    code, stdout, stderr = reproduce("--results", out, "--row", 1, cwd=tmp_path)
    assert code != 0 and message in stdout + stderr and not marker.exists()


@pytest.mark.parametrize("spec", ["this:x", "evilmod:Missing", "evilmod.sub:Enc", "antigravity:x"])
def test_a_spec_imports_nothing_before_its_factory_is_seen(spec, tmp_path, monkeypatch):
    from benchmark.core.errors import BenchError
    from benchmark.encoders import registry

    marker = tmp_path / "MARKER"
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    with pytest.raises(BenchError):
        registry.build(spec)
    assert not marker.exists() and not {"this", "evilmod", "antigravity"} & (set(sys.modules) - before)
    with pytest.raises(BenchError, match="not imported"):
        registry.build("evilmod:Enc", modules=False)


def test_a_users_runs_never_touch_the_projects_record(cifar_folder, tmp_path):
    """The README's quickstart from the checkout's root, with no BENCH_RESULTS: rows, leaderboard and figures
    land in the user's data folder; results/ and BENCHMARKS.md stay as committed."""
    import os

    def status():
        return subprocess.run(["git", "status", "--porcelain", "--", "results", "BENCHMARKS.md"], cwd=ROOT,
                              capture_output=True, text=True).stdout

    before = status()
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_RESULTS", "XDG_DATA_HOME")}
    env.update(HOME=str(tmp_path / "home"), BENCH_DATA_DIR=str(cifar_folder))
    for args in (["run", "cifar10", "--features", "pixels", "--val-size", "20"], ["leaderboard"]):
        ran = bench(*args, cwd=ROOT, env=env)
        assert ran.code == 0, ran.err
    mine = tmp_path / "home" / ".local" / "share" / "bench" / "results"
    assert (mine / "runs.csv").is_file() and (mine / "leaderboard.md").is_file()
    assert status() == before


def test_no_figure_is_typed_by_hand_in_the_documents():
    """Measured figures come from results/ by a command: outside the generated sections, BENCHMARKS.md and README.md
    state no measured percentages, speed-ups or timings (settings such as a 95% interval are not measurements)."""
    import re

    measured = re.compile(r"\d+\.\d+\s*(%|points?|x\b|s\b)|\b\d+(\.\d+)?x faster|±\s*\d")
    for name in ("BENCHMARKS.md", "README.md"):
        text = (ROOT / name).read_text()
        prose = re.sub(r"<!-- bench:([a-z0-9-]+):start -->.*?<!-- bench:\1:end -->", "", text, flags=re.S)
        prose = re.sub(r"```.*?```", "", prose, flags=re.S)  # commands and their sample output
        typed = [line for line in prose.splitlines() if measured.search(line)]
        assert not typed, f"{name}: figures typed by hand: {typed[:3]}"


def test_the_k_question_pairs_each_variant_at_both_k_on_validation(tmp_path):
    import numpy as np

    from benchmark.report import results
    from benchmark.report.document import Report
    from benchmark.report.sections.kquestion import k_question

    rng = np.random.default_rng(0)
    base = rng.random(10_000) < 0.7
    # the leaderboard's own row (runs.csv) pairs with the variant runs' (k-question.csv); a kNN row pairs with none
    for i, (spec, probe, flip, file) in enumerate([("kmeans", "svm", 0, "runs.csv"),
                                                   ("kmeans:k=4000", "svm", 300, "k-question.csv"),
                                                   ("kmeans", "svm:c=0.002", 0, "k-question.csv"),
                                                   ("kmeans:k=4000", "knn", 0, "runs.csv")]):
        out = tmp_path / file
        val = base.copy()
        val[:flip] = ~val[:flip]  # K = 4,000 wrong where K = 1,600 was right, and the reverse, on 300 images
        row = {"time": f"2026-12-05T10:00:0{i}", "dataset": "cifar10", "data_variant": "jpeg-q75-copy",
               "protocol": "full", "encoder": spec, "probe": probe, "scale": "standard", "val_acc": 100 * val.mean(),
               "test_acc": 70.0, "C": 1e-3, "gap": 1e-4, "search_gap": 1e-4, "seed": 0, "draws": 1, "layer": ""}
        row["predictions"] = results.save_predictions(out, row, {"test_correct": rng.random(100) < 0.7,
                                                                 "val_correct": val})
        results.append(row, out)
    text = k_question(Report(tmp_path / "runs.csv", tmp_path / "B.md"))
    assert "cifar10, svm, scale standard, C searched" in text and "cifar10, svm, scale standard, c=0.002" in text
    assert "cifar10, knn, scale standard, k, T searched" in text
    assert ("On validation, K = 4,000 below K = 1,600 beyond the interval (1): cifar10, svm, scale standard, "
            "C searched." in text), text  # 300 flips of a 70% base: about 210 lost, 90 gained
