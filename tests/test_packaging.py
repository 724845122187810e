"""The package as users get it: the wheel holds the licence, the type marker and the data files; the version
is written once; the declared dependencies are what the code imports."""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

import compat
from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGES = ("compat", "ports", "reference")
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"google_crc32c": "google-crc32c", "pyfive": "pyfive", "h5py": "h5py", "onnx": "onnx"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """``pip wheel . --no-deps`` of the checkout's files (a copy: setuptools' build/ folder would otherwise
    stay in the checkout, and stale files in it could enter later wheels)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--quiet",
                    "--disable-pip-version-check", "-w", str(out)], check=True, timeout=600)
    (path,) = out.glob("legacy_lstm-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_holds_the_licence_the_type_markers_and_the_data(wheel):
    names = wheel.namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    for package in PACKAGES:
        assert f"{package}/py.typed" in names
    assert "ports/theano_imdb/data/imdb_sample.npz" in names
    assert "ports/caffe_sequence/configs/lstm_short.prototxt" in names
    metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert f"\nVersion: {compat.__version__}\n" in metadata
    assert "\nLicense-Expression: Apache-2.0\n" in metadata
    assert "Requires-Python: <3.12,>=3.11" in metadata or "Requires-Python: >=3.11,<3.12" in metadata
    licence = wheel.read(next(n for n in names if n.endswith("/LICENSE"))).decode()
    assert licence.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in licence


def test_the_version_is_written_once():
    assert PYPROJECT["project"]["dynamic"] == ["version"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "compat.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", compat.__version__)
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"## {compat.__version__}" in changelog


def _imported_modules() -> set:
    found = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found


def _requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def test_the_dependencies_are_what_the_code_imports():
    third_party = {m for m in _imported_modules() - set(sys.stdlib_module_names) - set(PACKAGES)}
    required = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    optional = {_requirement_name(r) for extra in PYPROJECT["project"]["optional-dependencies"].values()
                for r in extra}
    imported = {DISTRIBUTIONS.get(m, m) for m in third_party}
    # everything imported is declared, everything required is imported
    assert imported <= required | optional, imported - required - optional
    assert required <= imported, required - imported
    assert "scipy" not in required | imported
