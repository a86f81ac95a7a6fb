"""An encoder from a separate pip-installed package, registered through the entry-point group."""

import os
from pathlib import Path
import subprocess
import sys
import textwrap

import pytest

from conftest import bench

PLUGIN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "bench-mean-colour"
        version = "0.1"

        [project.entry-points."bench.encoders"]
        mean-colour = "mean_colour:MeanColour"
    """,
}


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    src = tmp_path_factory.mktemp("plugin-src")
    for name, text in PLUGIN.items():
        (src / name).write_text(textwrap.dedent(text))
    (src / "mean_colour.py").write_text((Path(__file__).parent / "quadrants.py").read_text())  # the suite's encoder
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True)
    return target


def with_plugin(plugin_path, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}
    return bench(*args, env=env, cwd=plugin_path)


@pytest.mark.slow
def test_plugin_is_listed_and_runs(plugin_path, cifar_folder, tmp_path):
    listing = with_plugin(plugin_path, "encoders")
    assert "mean-colour" in listing.out and "Mean RGB of each image quadrant" in listing.out
    run = with_plugin(plugin_path, "run", "cifar10", "--features", "mean-colour", "--data-dir", str(cifar_folder),
                "--results", str(tmp_path / "runs.csv"), "--val-size", "20")
    assert run.code == 0, run.err
    assert "cifar10 | mean-colour | full | svm | test" in run.out and "| 12 dims" in run.out


def test_readme_encoder_example_runs(cifar_folder, tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("# my_encoders.py\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_encoders.py").write_text(code)
    run = with_plugin(tmp_path, "run", "cifar10", "--features", "my_encoders:TinyCNN:width=8", "--data-dir",
                str(cifar_folder), "--results", str(tmp_path / "runs.csv"), "--val-size", "20")
    assert run.code == 0, run.err
    assert "my_encoders:TinyCNN:width=8 | full" in run.out and "| 128 dims" in run.out
