"""What a wheel must carry, and how an installed gennas finds its files (issue 21).

The full check, a wheel built, installed into a fresh environment and run from outside the
checkout, is CI's `.ci/wheel_smoke`; these fast tests catch the usual way it breaks: a new
data file beside the code that no `package-data` pattern names.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from gennas import settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gennas", "diffusion", "predictors")


def _package_data() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["package-data"]


def _data_files() -> list[Path]:
    """Every file inside the packages that is not code (what the library reads at run time)."""
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*"))
            if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts]


def test_every_data_file_beside_the_code_goes_into_the_wheel() -> None:
    patterns = _package_data()
    files = _data_files()
    assert any(path.name == "nb201.pt" for path in files)  # the generator weights are among them
    unpackaged = []
    for path in files:
        package, *inner = path.relative_to(ROOT).parts  # patterns are relative to their package
        if not any(fnmatch.fnmatch("/".join(inner), pattern) for pattern in patterns.get(package, [])):
            unpackaged.append(str(path.relative_to(ROOT)))
    assert not unpackaged, f"add these to [tool.setuptools.package-data] in pyproject.toml: {unpackaged}"


def test_the_committed_weights_are_found_where_the_package_is() -> None:
    from diffusion.commands import WEIGHTS_DIR as generator_weights
    from predictors.transfer import WEIGHTS_DIR as prior_weights

    assert (generator_weights / "nb201.pt").is_file() and (generator_weights / "dag6.pt").is_file()
    assert all((prior_weights / f"nb201_prior_{d}.pt").is_file() for d in ("cifar10", "cifar100", "ImageNet16-120"))


def test_an_installed_gennas_looks_for_the_nb201_table_beside_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    """Installed, the package sits in site-packages: the table is looked for from the working directory."""
    site_packages = tmp_path / "venv" / "lib" / "site-packages"
    (site_packages / "gennas").mkdir(parents=True)
    (site_packages / ".." / "shared" / "data" / "nb201").mkdir(parents=True)  # must not be picked up
    work = tmp_path / "home" / "project"
    work.mkdir(parents=True)
    monkeypatch.setattr(settings, "_REPO_ROOT", site_packages)
    monkeypatch.delenv(settings.NB201_DIR_VAR, raising=False)
    monkeypatch.chdir(work)
    assert settings.nb201_dir() == (tmp_path / "home" / "shared" / "data" / "nb201").resolve()
    monkeypatch.setenv(settings.NB201_DIR_VAR, str(tmp_path / "table"))
    assert settings.nb201_dir() == tmp_path / "table"


@pytest.mark.parametrize("checkout", [True, False])
def test_provenance_asks_git_only_about_a_checkout(tmp_path: Path, monkeypatch, checkout: bool) -> None:
    import gennas.provenance as provenance

    package = tmp_path / "gennas"
    package.mkdir()
    if checkout:
        (tmp_path / ".git").mkdir()
    monkeypatch.setattr(provenance, "__file__", str(package / "provenance.py"))
    calls: list[list[str]] = []
    monkeypatch.setattr(provenance.subprocess, "run", lambda argv, **kw: calls.append(argv) or _Done())
    answer = provenance._git("rev-parse", "--short", "HEAD")
    assert (answer, bool(calls)) == (("abc1234", True) if checkout else ("unknown", False))


class _Done:
    stdout = "abc1234\n"


def _code_strings(path: Path) -> list[str]:
    """Every string literal of a module that is not a docstring (docstrings may cite results files)."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_library_module_names_a_path_under_experiments() -> None:
    """Library code must not read the benchmarks' files: a wheel does not carry them, and a run on a new
    dataset must learn from that dataset's own measurements (issue 15). The run itself is checked by
    ``test_new_user.py::test_a_run_opens_nothing_under_experiments``."""
    offenders = [f"{path.relative_to(ROOT)}: {text!r}" for package in PACKAGES
                 for path in sorted((ROOT / package).rglob("*.py"))
                 for text in _code_strings(path) if "experiments" in text]
    assert not offenders, offenders
