"""The interface a newcomer meets: every bad input is one line before any work; every option explained."""

import pickle

import click
import pytest
import torch

from benchmark.cli.commands import cli
from conftest import console


def one_line_error(code, err, *fragments):
    """Exit 2 and one ``error:`` line, the last thing said (progress and info lines may come before it)."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


BAD_RUNS = [
    (["--features", "kmeans:k=-5"], "k='-5': must be >= 1"),
    (["--features", "kmeans:k=0"], "k='0': must be >= 1"),
    (["--features", "kmeans:k=abc"], "k='abc': takes an integer"),
    (["--features", "kmeans:seed=x"], "seed='x': takes an integer"),
    (["--features", "kmeans:k=2.5"], "takes an integer"),
    (["--features", "kmeans:bogus=1"], "unknown option 'bogus'"),
    (["--features", "kmeans:k=1,k=2"], "given twice"),
    (["--features", "dcgan-random:bn_images=abc"], "bn_images='abc'"),
    (["--features", "dcgan-random:layers=9"], "layers"),
    (["--features", "dcgan-random:arch=huge"], "choose from"),
    (["--features", "pixels:size=3"], "unknown option 'size'"),
    (["--features", "nope"], "unknown encoder 'nope'"),
    (["--features", "pixels", "--batch-size", "0"], "--batch-size"),
    (["--features", "pixels", "--batch-size", "-1"], "--batch-size"),
    (["--features", "pixels", "--seed", "-1"], "--seed"),
    (["--features", "pixels", "--limit", "0"], "--limit"),
    (["--features", "pixels", "--limit", "-1"], "--limit"),
    (["--features", "pixels", "--protocol", "fuzzy"], "--protocol"),
    (["--features", "pixels", "--protocol", "few", "--draws", "1"], "--draws"),
    (["--features", "pixels", "--protocol", "few", "--per-class", "50"], "fewer than 50 per class"),
    (["--features", "pixels", "--gap", "0"], "--gap"),
    (["--features", "pixels", "--device", "tpu"], "--device"),
    (["--features", "pixels", "--val-size", "abc"], "--val-size"),
]


@pytest.mark.parametrize("args, message", BAD_RUNS, ids=[" ".join(a) for a, _ in BAD_RUNS])
def test_bad_run_options_are_one_line_before_any_work(args, message, cifar_folder, tmp_path, monkeypatch, capsys):
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10", "--data-dir", cifar_folder, "--cache-dir",
                         tmp_path / "cache", "--results", tmp_path / "runs.csv", *args)
    one_line_error(code, err, message)
    assert not (tmp_path / "cache" / "features").exists() and not (tmp_path / "runs.csv").exists()


BAD_RESULTS = {  # name -> (how the path is made bad, what the error says)
    "plain/runs.csv": (lambda p: p.parent.write_text("x"), "a parent of this path is a file"),
    "bad.csv": (lambda p: p.write_bytes(b"\xff\xfe\x00 not text"), "not a text CSV file"),
    "other.csv": (lambda p: p.write_text("name,score\na,1\n"), "are not result columns"),
    "dir.csv": (lambda p: p.mkdir(), "is a directory"),
}


@pytest.mark.parametrize("name", BAD_RESULTS)
def test_bad_results_files_are_one_line_before_any_work(name, cifar_folder, tmp_path, monkeypatch, capsys):
    path, (make, message) = tmp_path / name, BAD_RESULTS[name]
    make(path)
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder,
                         "--cache-dir", tmp_path / "cache", "--results", path)
    one_line_error(code, err, str(path), message)
    assert not (tmp_path / "cache").exists()


def test_missing_and_empty_class_folders_are_errors(cifar_folder, tmp_path, monkeypatch, capsys):
    import shutil

    shutil.rmtree(cifar_folder / "cifar10" / "test" / "cat")
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder,
                         "--results", tmp_path / "runs.csv")
    one_line_error(code, err, "cat")
    (cifar_folder / "cifar10" / "test" / "cat").mkdir()
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder,
                         "--results", tmp_path / "runs.csv")
    one_line_error(code, err, "cat")


def test_skipped_files_are_counted_in_one_line(cifar_folder, tmp_path, monkeypatch, capsys):
    (cifar_folder / "cifar10" / "train" / "dog" / "notes.txt").write_text("not an image")
    code, _, out, err = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder,
                           "--results", tmp_path / "runs.csv", "--val-size", "20")
    said = [line for line in (out + err).replace("\r", "\n").splitlines() if ": skipped " in line]
    assert code == 0 and len(said) == 1 and "skipped 1 file " in said[0] and "notes.txt" in said[0], out + err


def test_a_pickled_list_as_a_cifar_batch_is_one_line(cifar_batches, tmp_path, monkeypatch, capsys):
    path = cifar_batches / "cifar10" / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir", cifar_batches,
                         "--results", tmp_path / "runs.csv")
    one_line_error(code, err, "data_batch_1")


@pytest.fixture
def small_run(tmp_path, monkeypatch, capsys):
    """A one-step `bench train dcgan` run folder on a tiny image folder, and the command that made it."""
    from conftest import console, write_image_folder

    write_image_folder(tmp_path / "imgs", ["a", "b"], 8)
    command = ["train", "dcgan", "--data", f"folder:{tmp_path / 'imgs'}", "--arch", "small", "--epochs", "1",
               "--batch-size", "8", "--device", "cpu", "--out"]
    code, _, out, err = console(monkeypatch, capsys, *command, tmp_path / "run")
    assert code == 0, out + err
    return tmp_path / "run", command


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(b""), "neither a PyTorch checkpoint nor a safetensors file (it is empty)"),
    (lambda p: p.write_bytes(p.read_bytes()[:1000]), "a damaged or unsafe PyTorch file"),
    (lambda p: torch.save({"weights": torch.zeros(3)}, p), "not a `bench train` checkpoint"),
    (lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"), "a damaged or unsafe PyTorch file"),
])
def test_resume_from_a_damaged_or_foreign_checkpoint_is_one_line(damage, message, small_run, monkeypatch, capsys):
    run, command = small_run
    damage(run / "checkpoint.pt")
    code, _, _, err = console(monkeypatch, capsys, *command, run, "--epochs", "2", "--resume")
    one_line_error(code, err, "checkpoint.pt", message)


def test_a_checkpoint_of_another_architecture_is_one_line_on_both_paths(small_run, tmp_path, monkeypatch, capsys):
    run, command = small_run
    code, _, _, err = console(monkeypatch, capsys, *[c if c != "small" else "svhn32" for c in command], run, "--resume")
    one_line_error(code, err, "checkpoint.pt", "other config")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["config"]["arch"] = "svhn32"  # weights of one architecture under the name of another
    torch.save(state, run / "checkpoint.pt")
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10", "--features", f"dcgan:{run}", "--data-dir",
                         tmp_path / "nodata", "--results", tmp_path / "runs.csv")
    one_line_error(code, err, str(run), "another --arch")


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))
        else:
            yield " ".join(prefix + (name,)), command


@pytest.mark.parametrize("name, command", list(_commands(cli)), ids=[n for n, _ in _commands(cli)])
def test_every_command_and_option_has_help(name, command):
    assert (command.help or "").strip(), f"bench {name} has no help"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"bench {name} {param.opts[0]} has no help"
            assert "RUN_DIR" not in param.help or name.startswith("pretrained"), (name, param.help)


def test_cache_clear_asks_first(cifar_folder, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    code, *_ = console(monkeypatch, capsys, "run", "cifar10", "--features", "pixels", "--data-dir", cifar_folder,
                       "--cache-dir", cache, "--results", tmp_path / "runs.csv", "--val-size", "20")
    assert code == 0 and any((cache / "features").iterdir())
    code, _, out, err = console(monkeypatch, capsys, "cache", "clear", "--cache-dir", cache, stdin="n\n")
    assert code != 0 and any((cache / "features").iterdir()), out + err
    code, _, out, err = console(monkeypatch, capsys, "cache", "clear", "--cache-dir", cache, "--yes")
    assert code == 0 and not any((cache / "features").glob("*.h5")), out + err


def test_pretrained_list_and_weights_messages(tmp_path, monkeypatch, capsys):
    code, _, out, err = console(monkeypatch, capsys, "pretrained", "list")
    assert code == 0 and "dcgan-imagenet" in out and "exemplar-cnn-small" in out, err
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10", "--features", "dcgan-imagenet", "--data-dir",
                         tmp_path, "--results", tmp_path / "runs.csv")
    line = one_line_error(code, err, "--weights-dir")
    assert len(line) < 400, line
    (tmp_path / "w" / "dcgan_code").mkdir(parents=True)
    code, _, _, err = console(monkeypatch, capsys, "run", "cifar10", "--features", "dcgan-imagenet", "--data-dir",
                         tmp_path, "--weights-dir", tmp_path / "w" / "dcgan_code", "--results", tmp_path / "runs.csv")
    line = one_line_error(code, err)
    assert "dcgan_code/dcgan_code" not in line and len(line) < 400, line


@pytest.mark.parametrize("variable, default", [("GOMP_SPINCOUNT", "1000"), ("THP_MEM_ALLOC_ENABLE", "1")])
def test_bench_sets_its_threading_and_page_defaults_unless_the_user_set_them(monkeypatch, capsys, variable, default):
    """Spinning threads starve a probe on a machine whose cores are busy (20x slower beside one other process);
    4 KB pages make reading rows at random (kNN re-scoring) several times slower on a VM."""
    import os

    monkeypatch.delenv(variable, raising=False)
    assert console(monkeypatch, capsys, "--version").code == 0
    assert os.environ[variable] == default
    monkeypatch.setenv(variable, "0")
    assert console(monkeypatch, capsys, "--version").code == 0
    assert os.environ[variable] == "0"
