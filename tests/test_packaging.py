"""Packaging: one version source, a licence and a citation that agree with it, conda environments that match
pyproject's dependencies, and ``xlmr --version`` that works before torch can be imported."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import xlmr_core

REPO = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# conda-forge names of pyproject's dependencies where they differ
CONDA_NAMES = {"torch": ("pytorch-gpu", "pytorch-cpu"), "matplotlib": ("matplotlib-base",)}


def _name_and_bounds(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*$", spec)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_one_version_source_and_the_citation_agrees():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "xlmr_core.__version__"}
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert str(cff["version"]) == xlmr_core.__version__ and cff["cff-version"] == "1.2.0"
    assert cff["license"] == PYPROJECT["project"]["license"] == "MIT"
    assert (REPO / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_version_works_without_torch():
    # `xlmr --version` must answer before any subcommand's module (torch, pandas) is imported
    code = ("import sys; sys.modules['torch'] = None; sys.modules['pandas'] = None\n"
            "from xlmr_core.cli import main; main(['--version'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"xlmr {xlmr_core.__version__}"


def test_dependencies_bounded_where_internals_are_used():
    deps = dict(_name_and_bounds(d) for d in PYPROJECT["project"]["dependencies"])
    assert "<" in deps["submitit"], "jobs.py reads submitit internals: bound it above"
    assert "<" in deps["torch"]
    notebooks = dict(_name_and_bounds(d) for d in PYPROJECT["project"]["optional-dependencies"]["notebooks"])
    assert "jupyter-client" in notebooks and "papermill" in notebooks  # notebooks.py imports jupyter_client


@pytest.mark.parametrize("env", ["environment.yml", "environment-cpu.yml"])
def test_conda_environment_matches_pyproject(env):
    spec = yaml.safe_load((REPO / env).read_text(encoding="utf-8"))
    assert spec["channels"][0] == "conda-forge" and "pytorch" not in spec["channels"]
    conda = dict(_name_and_bounds(d) for d in spec["dependencies"] if isinstance(d, str))
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    assert pip == ["-e ."], "no dev or notebook extras on clusters"
    torch_name = "pytorch-gpu" if env == "environment.yml" else "pytorch-cpu"
    for dep in PYPROJECT["project"]["dependencies"]:
        name, bounds = _name_and_bounds(dep)
        names = [n for n in CONDA_NAMES.get(name, (name,)) if n in conda]
        if name == "torch":
            names = [torch_name]
        assert names and names[0] in conda, f"{env} lacks {name}"
        assert conda[names[0]] == bounds, f"{env}: {names[0]}{conda[names[0]]} but pyproject {name}{bounds}"
