"""A non-editable install works: the wheel carries what commands read at run time.

The wheel is built from a copy of the checkout (no stale ``build/`` folder, nothing written into
the checkout) without build isolation, with the setuptools the ``test`` extra installs, and
installed offline (``--no-deps --no-index``) into a fresh venv. That venv sees
the packages this interpreter already has (torch, transformers, ...), so nothing is downloaded:
``--system-site-packages`` reaches only the base interpreter's packages, so when the tests run
inside a venv a ``.pth`` file adds that venv's site-packages too. Every command runs from a
folder outside the repository.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = (
    ".git",
    ".venv",
    "runs",
    "build",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "test-artifacts",
)


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """A venv with the wheel installed, a folder outside the repository, a saved micro model."""
    scratch = tmp_path_factory.mktemp("packaging")
    source = scratch / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    wheels = scratch / "wheels"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["-w", str(wheels), str(source)],
        cwd=scratch,
    )
    (wheel,) = wheels.glob("omni_kit-*.whl")
    env_dir = scratch / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], scratch
    )
    (Path(purelib.stdout.strip()) / "outer-site-packages.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n"
    )
    # --ignore-installed: an omni-kit the outer environment holds (editable) is left alone
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index"]
        + ["--ignore-installed", str(wheel)],
        cwd=scratch,
    )
    from omni.presets import build_micro_pipeline

    model = scratch / "micro-model"
    build_micro_pipeline().save_pretrained(model)
    elsewhere = scratch / "elsewhere"
    elsewhere.mkdir()
    return {"venv": env_dir, "cwd": elsewhere, "model": model}


@pytest.mark.slow
def test_the_installed_package_is_the_wheel_not_the_checkout(installed) -> None:
    python = installed["venv"] / "bin" / "python"
    code = "import omni, app; print(omni.__file__); print(app.__file__)"
    files = run([str(python), "-c", code], installed["cwd"]).stdout.split()
    assert all(Path(f).is_relative_to(installed["venv"]) for f in files), files


@pytest.mark.slow
def test_the_wheel_ships_the_demo_examples_and_the_recipes(installed) -> None:
    python = installed["venv"] / "bin" / "python"
    code = (
        "from app.examples import EXAMPLES_DIR, example_rows\n"
        "from omni.resources import shipped_path\n"
        "print(EXAMPLES_DIR)\n"
        "print(shipped_path('configs') / 'curriculum.yaml')\n"
        "print(len(example_rows(['en-f1'], ['text', 'image', 'audio'])))\n"
    )
    examples, recipe, rows = run([str(python), "-c", code], installed["cwd"]).stdout.split()
    assert Path(examples).is_relative_to(installed["venv"])
    assert {p.name for p in Path(examples).iterdir()} >= {
        "scene.png",
        "question.wav",
        "sentence.wav",
    }
    assert Path(recipe).is_file() and Path(recipe).is_relative_to(installed["venv"])
    assert rows == "5"


@pytest.mark.slow
def test_omni_help_and_generate_run_from_the_installed_wheel(installed) -> None:
    omni = str(installed["venv"] / "bin" / "omni")
    assert "generate" in run([omni, "--help"], installed["cwd"]).stdout
    out = installed["cwd"] / "answer.png"
    command = [
        omni,
        "generate",
        "--model",
        str(installed["model"]),
        "--input",
        "Draw this: a red star",
    ]
    run(
        command + ["--out-modality", "image", "--steps", "2", "--output", str(out)],
        installed["cwd"],
    )
    from PIL import Image

    with Image.open(out) as image:
        assert image.width > 0 and image.height > 0
    run(command + ["--max-new-tokens", "4"], installed["cwd"])  # a text answer, printed
