"""The package as pip installs it: every module and data file is in the wheel,
and data loads from it."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minigpt"


def package_files() -> set[str]:
    """Every file of the source package (modules and data), as paths inside a
    wheel."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline from a copy of the project (the build leaves no
    files in the checkout)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copytree(
        PACKAGE,
        source / "minigpt",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("minigpt-*.whl")
    return built


def test_the_wheel_holds_every_module_and_data_file(wheel):
    with zipfile.ZipFile(wheel) as archive:
        inside = {
            name for name in archive.namelist() if name.startswith("minigpt/")
        }
    assert "minigpt/tasks/data/sentiment_pairs.txt" in inside
    assert package_files() - inside == set(), (
        "add the missing files to pyproject.toml (packages / package-data)"
    )


def run_from_wheel(wheel: Path, code: str) -> str:
    """What ``code`` prints in a fresh Python that imports the ``wheel``.

    The wheel stays zipped (zipimport), so no file can come from the
    checkout.
    """
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import minigpt; "
        f"assert minigpt.__file__.startswith(sys.argv[1]); {code}"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_task_data_loads_through_importlib_resources_from_the_wheel(wheel):
    printed = run_from_wheel(
        wheel,
        "import hashlib, minigpt.tasks as t; "
        "print(hashlib.sha256(t.read_data('sentiment_pairs.txt').encode()).hexdigest())",
    )
    checkout = (
        PACKAGE / "tasks" / "data" / "sentiment_pairs.txt"
    ).read_bytes()
    assert printed == hashlib.sha256(checkout).hexdigest()


def test_the_corpus_loads_from_the_wheel_with_its_checksum(wheel):
    """Tiny Shakespeare read out of the zipped wheel: load_text checks its
    size and SHA-256."""
    assert (
        run_from_wheel(
            wheel,
            "from minigpt import data; "
            "print(len(data.load_text('tinyshakespeare')))",
        )
        == "1115394"
    )


def pins(lines) -> dict[str, str]:
    """{name: version} of the ``name==version`` lines (comments dropped)."""
    found = {}
    for line in lines:
        requirement = line.split("#")[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==")
            found[name.strip().lower().replace("_", "-")] = version.strip()
    return found


# the top-level module of an import statement at the start of a line
IMPORT = re.compile(r"^\s*(?:import|from) ([A-Za-z_]+)", re.MULTILINE)


def test_the_book_extra_pins_what_the_notebooks_import_as_requirements():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = pins(project["project"]["optional-dependencies"]["book"])
    required = pins((ROOT / "requirements.txt").read_text().splitlines())
    # the same version as requirements.txt, for every library of the extra
    assert {name: required.get(name) for name in extra} == extra
    # and every library a notebook imports is in it: torch is the platform's
    # own on Colab or Binder, IPython runs the notebook, minigpt is what is
    # installed, and benchmarks/harness.py exists only in a clone (the
    # Performance appendix says so)
    module_to_package = {"rouge_score": "rouge-score", "myst_nb": "myst-nb"}
    imported = set()
    for notebook in (ROOT / "book").glob("*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                imported |= set(IMPORT.findall(source))
    third_party = {
        module_to_package.get(name, name)
        for name in imported
        if name not in sys.stdlib_module_names
        and name not in ("torch", "IPython", "minigpt", "harness")
    }
    assert third_party <= set(extra), third_party - set(extra)
