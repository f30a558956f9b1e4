"""The installable package: a wheel with extras, console commands and no dev tooling.

Builds the wheel offline from the checkout with the pinned build backend already in the venv
(``pip wheel --no-deps --no-build-isolation``) and reads what pip would install from it.
"""

from __future__ import annotations

import configparser
import importlib
import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = {
    "multihead-train": "training.__main__:run",
    "multihead-gateway": "serving.gateway.command:main",
    "multihead-modelserver": "serving.modelserver.__main__:run",
}
DATA_FILES = {
    "training/income_groups.yaml",
    "training/datasets.json",
    "serving/protos/tfs_wire.proto",
    "serving/gateway/gunicorn_conf.py",
}
DEV_TOOLING = {
    "training/tiny.py",
    "serving/processes.py",
    "serving/gateway/launcher.py",
    "serving/modelserver/launcher.py",
    "serving/modelserver/bench.py",
    "serving/protos/build.py",
}
Requirement = tuple[str, str | None]  # (normalised name, extra or None for the base install)


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*command, "--no-index", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (built,) = out.glob("multihead_serving-*.whl")
    return zipfile.ZipFile(built)


def dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [item for item in wheel.namelist() if item.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


def requirements(wheel: zipfile.ZipFile) -> set[Requirement]:
    """Every Requires-Dist of the METADATA as (name, extra)."""
    metadata = Parser().parsestr(dist_info(wheel, "METADATA"))
    found: set[Requirement] = set()
    for line in metadata.get_all("Requires-Dist") or []:
        name = normalise(re.split(r"[\s<>=!~;\[(]", line, maxsplit=1)[0])
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", line)
        found.add((name, extra.group(1) if extra else None))
    return found


def names_in(path: Path) -> set[str]:
    """Package names listed in a requirements file (no options, no comments)."""
    lines = path.read_text().splitlines()
    stripped = (line.split("#")[0].strip() for line in lines)
    return {
        normalise(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])
        for line in stripped
        if line and not line.startswith("-")
    }


def test_serve_extra_pulls_no_tensorflow(wheel: zipfile.ZipFile) -> None:
    found = requirements(wheel)
    serve = {name for name, extra in found if extra in {None, "serve"}}
    assert {"flask", "gunicorn", "grpcio", "tokenizers"} <= serve
    assert not {name for name in serve if name.startswith(("tensorflow", "keras"))}, serve
    train = {name for name, extra in found if extra == "train"}
    assert {"tensorflow", "keras", "keras-tuner"} <= train
    assert {"locust", "flask"} <= {name for name, extra in found if extra == "loadtest"}
    assert {"pytest", "mypy", "tensorflow", "locust"} <= {n for n, e in found if e == "dev"}


def test_serve_extra_is_the_gateway_requirements(wheel: zipfile.ZipFile) -> None:
    serve = {name for name, extra in requirements(wheel) if extra in {None, "serve"}}
    assert serve == names_in(ROOT / "requirements" / "gateway.in")


def test_every_requirement_is_pinned_by_the_constraints(wheel: zipfile.ZipFile) -> None:
    pinned = names_in(ROOT / "requirements" / "constraints.txt")
    missing = {name for name, _ in requirements(wheel)} - pinned
    assert not missing, f"not in requirements/constraints.txt: {sorted(missing)}"


def test_console_scripts_are_declared_and_resolve(wheel: zipfile.ZipFile) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(dist_info(wheel, "entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == COMMANDS
    for target in COMMANDS.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_ships_data_files_and_no_dev_tooling(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert names >= DATA_FILES
    assert not DEV_TOOLING & names
    assert not {name for name in names if name.startswith(("tests/", "loadtests/", "scripts/"))}
    # A shipped module that imports a left-out one would break the installed commands.
    dev_modules = [path.removesuffix(".py").replace("/", ".") for path in DEV_TOOLING]
    for name in names:
        if name.endswith(".py"):
            source = wheel.read(name).decode()
            for module in dev_modules:
                assert not re.search(rf"^\s*(from|import) {re.escape(module)}\b", source, re.M), (
                    f"{name} imports {module}, which the wheel leaves out"
                )
