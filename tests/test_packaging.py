"""Packaging: one version source, a licence and a citation that agree with it, conda environments that match
pyproject's dependencies, ``xlmr --version`` that works before torch can be imported, and a non-editable install
(outside the repository) that answers ``xlmr --version``, finds its notebooks and draws figures with them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
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


# ---------------------------------------------------------------- a non-editable install


@dataclass
class Installed:
    """The package installed with ``pip install --target site`` (not editable) from a copy of the source."""

    site: Path
    """What pip installed: ``xlmr_core/`` with its package data, ``bin/`` with the console scripts."""
    work: Path
    """A working directory outside the repository (and outside ``site``)."""


def run_installed(inst: Installed, *argv: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``argv`` (``python`` means this interpreter: torch & co. from its environment) run in ``inst.work`` with
    only the installed package on PYTHONPATH; fails the test with its output unless it exits 0."""
    argv = [sys.executable, *argv[1:]] if argv[0] == "python" else [str(inst.site / "bin" / argv[0]), *argv[1:]]
    env = {**os.environ, "PYTHONPATH": str(inst.site), "PYTHONNOUSERSITE": "1"}
    out = subprocess.run(argv, cwd=inst.work, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{argv} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed_package(tmp_path_factory) -> Installed:
    """pip builds a wheel of a copy of the repository's package (no network, no build isolation, no
    dependencies) and installs it into a directory of its own."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "xlmr_core", src / "xlmr_core", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    site = tmp_path_factory.mktemp("site")
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                          "--quiet", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return Installed(site=site, work=tmp_path_factory.mktemp("work"))


@pytest.mark.timeout(300)
def test_installed_package_answers_version(installed_package):
    want = f"xlmr {xlmr_core.__version__}"
    assert run_installed(installed_package, "python", "-m", "xlmr_core", "--version").stdout.strip() == want
    assert run_installed(installed_package, "xlmr", "--version").stdout.strip() == want
    code = "import xlmr_core; print(xlmr_core.__file__)"
    where = Path(run_installed(installed_package, "python", "-c", code).stdout.strip())
    assert where.is_relative_to(installed_package.site), where  # the install, not the repository


@pytest.mark.timeout(300)
def test_installed_package_draws_figures_with_its_notebooks(installed_package):
    """The packaged notebooks are found inside the install and one of them runs against a small study (two copies
    of the fixture run, collected into the study's table) from a directory outside the repository."""
    pytest.importorskip("papermill", reason="running notebooks needs the notebook extra")
    inst = installed_package
    code = "from xlmr_core.study import notebooks; print(notebooks.notebook_path('capacity_dilution'))"
    path = Path(run_installed(inst, "python", "-c", code).stdout.strip())
    assert path.is_relative_to(inst.site) and path.is_file()
    study = inst.work / "results" / "sampling_alpha"
    for name in ("fixture-s0", "fixture-s1"):
        shutil.copytree(REPO / "tests" / "fixtures" / "run_v0", study / name)
        cfg = json.loads((study / name / "config.json").read_text())
        cfg["config"]["name"] = name
        (study / name / "config.json").write_text(json.dumps(cfg))
    code = ("import sys; from pathlib import Path; from xlmr_core.study import notebooks, results\n"
            "assert Path(notebooks.__file__).is_relative_to(sys.argv[1]), notebooks.__file__\n"
            "root = Path('results/sampling_alpha')\n"
            "results.write_table(results.tidy(results.run_dirs(root)), root)\n"
            "print(notebooks.run_notebook('sampling_alpha', root, 'figures', planned_runs=2, timeout_s=240))")
    out = run_installed(inst, "python", "-c", code, str(inst.site), timeout=280).stdout.strip().splitlines()[-1]
    assert (inst.work / out).is_file() and Path(out).name == "sampling_alpha.ipynb"
    for ext in ("png", "pdf", "csv"):
        assert (inst.work / "figures" / f"sampling_alpha.{ext}").stat().st_size > 0


@pytest.mark.timeout(600)
def test_installed_package_plans_a_study(installed_package, demo_corpus):
    """``xlmr-sweep plan`` from the install's console script, outside the repository, on the demo corpus."""
    out = run_installed(installed_package, "xlmr-sweep", "plan", "capacity_dilution", "--scale", "demo", "--corpus",
                        str(demo_corpus), timeout=580).stdout
    assert "6 runs (capacity_dilution, scale demo" in out and "no language above 4 epochs" in out
    assert "results/capacity_dilution" in out
