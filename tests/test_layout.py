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
