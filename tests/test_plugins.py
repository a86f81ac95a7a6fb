"""An encoder from a separate pip-installed package, registered through the entry-point group."""

import os
from pathlib import Path
import subprocess
import sys
import textwrap

import pytest

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
    "mean_colour.py": '''
        """Per-quadrant mean colour, a 12-number encoder."""
        import numpy as np
        from benchmark.encoders.base import Encoder


        class MeanColour(Encoder):
            """Mean RGB of each image quadrant (12 features)."""
            name = "mean-colour"

            @property
            def dim(self):
                return 12

            def transform(self, images):
                q = images.reshape(len(images), 2, 16, 2, 16, 3).mean((2, 4))
                return (q.reshape(len(images), -1) / 255.0).astype(np.float32)
    ''',
}


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    src = tmp_path_factory.mktemp("plugin-src")
    for name, text in PLUGIN.items():
        (src / name).write_text(textwrap.dedent(text))
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True)
    return target


def bench(plugin_path, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", "from benchmark.cli import main; main()", *args],
                          capture_output=True, text=True, env=env)


def test_plugin_is_listed_and_runs(plugin_path, cifar_folder, tmp_path):
    listing = bench(plugin_path, "encoders")
    assert "mean-colour" in listing.stdout and "Mean RGB of each image quadrant" in listing.stdout
    run = bench(plugin_path, "run", "cifar10", "--features", "mean-colour", "--data-dir", str(cifar_folder),
                "--results", str(tmp_path / "runs.csv"), "--val-size", "20")
    assert run.returncode == 0, run.stderr
    assert "cifar10 | mean-colour | full | svm | test" in run.stdout and "| 12 dims" in run.stdout


def test_readme_encoder_example_runs(cifar_folder, tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("# my_encoders.py\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_encoders.py").write_text(code)
    run = bench(tmp_path, "run", "cifar10", "--features", "my_encoders:TinyCNN:width=8", "--data-dir",
                str(cifar_folder), "--results", str(tmp_path / "runs.csv"), "--val-size", "20")
    assert run.returncode == 0, run.stderr
    assert "my_encoders:TinyCNN:width=8 | full" in run.stdout and "| 128 dims" in run.stdout
