"""The built wheel, installed without -e into a fresh virtual environment, works on its own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import bench

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv that reuses this environment's packages (torch included) and holds the wheel of this checkout.

    This environment's site-packages join the new venv through a .pth file, whether the tests run in the
    system interpreter or in a venv of their own (where `--system-site-packages` would reach only the base
    interpreter's, without the project's dependencies). A .pth file's folders are not scanned for .pth files
    themselves, so this checkout's editable install does not follow: the venv imports the wheel's copy."""
    import site

    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(work / "dist")], check=True)
    wheel = next((work / "dist").glob("bench-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    python = work / "venv" / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    outer = [*site.getsitepackages(), site.getusersitepackages()]
    (Path(purelib) / "outer-environment.pth").write_text("\n".join(p for p in outer if Path(p).is_dir()) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)],
                   check=True)
    return work / "venv"


def installed(venv, *args, cwd):
    """The wheel's own bench script, with nothing of this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BENCH_WEIGHTS_DIR")}
    return bench(*args, cwd=cwd, env=env, executable=venv / "bin" / "bench")


@pytest.mark.slow
def test_the_installed_wheel_lists_encoders_and_models_and_runs(venv, cifar_folder, tmp_path):
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import benchmark; print(benchmark.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert str(venv) in where.stdout, where.stdout + where.stderr  # the wheel's copy, not the checkout

    listing = installed(venv, "encoders", cwd=tmp_path)
    assert listing.code == 0 and "dcgan-imagenet" in listing.out and "exemplar-cnn-small" in listing.out

    models = installed(venv, "pretrained", "list", cwd=tmp_path)
    assert models.code == 0, models.err
    assert "dcgan-tinyimagenet-small" in models.out and "1 verified" in models.out  # the wheel carries its weights

    run = installed(venv, "run", "cifar10", "--features", "pixels", "--data-dir", str(cifar_folder), "--val-size", "20",
                cwd=tmp_path)
    assert run.code == 0, run.err
    assert "cifar10 | pixels | full | svm | test" in run.out and Path(os.environ["BENCH_RESULTS"]).is_file()
