"""The package as pip installs it: every module and data file is in the wheel,
and data loads from it."""

import hashlib
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
