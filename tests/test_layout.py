"""The package layout: the import-linter layers contract keeps the data flow one way."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept():
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports is missing: install the test extras (pip install -e '.[test]')")
    proc = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " 0 broken" in proc.stdout


def test_every_subpackage_says_what_it_owns_and_may_import():
    for init in sorted((ROOT / "benchmark").glob("*/__init__.py")):
        doc = init.read_text().split('"""')[1] if init.read_text().startswith('"""') else ""
        assert len(doc.split()) >= 20 and "import" in doc.lower(), f"{init}: say what it owns and may import"


def test_every_model_trained_here_ships_in_the_wheel():
    """pyproject.toml's data-files carry the registry and every project-trained model's weights."""
    import tomllib

    from benchmark.encoders import pretrained

    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert data_files["share/bench/pretrained"] == ["pretrained/manifest.toml"]
    for entry in pretrained.manifest().values():
        if "encoder" in entry.meta:
            assert data_files[f"share/bench/pretrained/{entry.folder}"] == [f"pretrained/{entry.folder}/*.npz"]


def test_notebook_entry_points():
    """The two public Python entry points the README shows."""
    import numpy as np
    import torch

    from benchmark.encoders import build
    from benchmark.probe import L2SVM

    encoder = build("pixels")
    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    X, y = torch.from_numpy(encoder.transform(images)), torch.arange(40) % 4
    model = L2SVM(C=1e-2).fit(X, y)
    assert model.certified_ and model.predict(X).shape == (40,)


def module_imports() -> dict[str, set[str]]:
    """Every benchmark module and the benchmark modules it imports, anywhere in it (inside functions too)."""
    import ast

    graph = {}
    for path in (ROOT / "benchmark").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        name = ".".join(parts if parts[-1] != "__init__" else parts[:-1])
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                if node.level or target.startswith("benchmark"):
                    found.add(target)
                    found |= {f"{target}.{a.name}" for a in node.names}  # `from . import x` names modules too
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("benchmark")}
        graph[name] = found
    return {name: {t for t in targets if t in graph and t != name} for name, targets in graph.items()}


def test_no_two_modules_import_each_other():
    """Not even through an import inside a function, which the layers contract cannot see. A package's
    __init__ re-exporting its own modules is not a circle."""
    graph = module_imports()
    pairs = sorted((a, b) for a, targets in graph.items() for b in targets
                   if a < b and a in graph.get(b, ()) and not (a.startswith(b + ".") or b.startswith(a + ".")))
    assert not pairs, f"modules importing each other: {pairs}"
