"""A non-editable wheel works outside the repository: boards, firmware sources, templates, latency data
and the zoo are package data found with importlib.resources, not paths next to the source tree."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    had_build = (ROOT / "build").exists()
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=600)
    if not had_build:  # setuptools builds in the source tree: leave it as it was
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("tinyml_mcu-*.whl")
    return whl


def test_the_wheel_carries_the_data_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("boards/qemu-m4.json", "boards/stm32f746g-disco.json", "firmware/include/tinyengine.h",
              "firmware/src/te_conv.c", "firmware/app/main.c", "firmware/qemu/mps2-an386.ld",
              "firmware/platformio/platform-armbare/platform.json", "codegen/templates/model.c.j2",
              "tinyengine/latency/data/qemu-m4.json", "search_spaces/zoo/mcunet-vww1.json",
              "tinyml_errors/__init__.py", "tinyml_cli/engine.py"):
        assert f in names, f
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


@pytest.mark.slow
def test_installed_wheel_generates_and_builds_outside_the_repo(wheel, tmp_path):
    """A fresh venv with only the wheel installed (its dependencies taken from this environment's
    site-packages, which holds no link to the source tree): gen + build from a folder outside the repo."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.fail("arm-none-eabi-gcc is missing: run scripts/setup.sh (it installs gcc-arm-none-eabi)")
    # nothing of the source tree may leak in: no PYTHONPATH (it would also make pip think the project,
    # whose egg-info the wheel build leaves in the tree, is installed already)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--force-reinstall",
                        str(wheel)], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, env=env).stdout.strip()
    # third-party packages only: a plain path line adds the directory but does not run its .pth files,
    # so this environment's editable hook (which maps our packages to the repo) stays out
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    where = subprocess.run([str(py), "-c", "import tinyengine, firmware, boards; print(tinyengine.__file__, "
                            "firmware.root(), boards.boards_dir())"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    assert str(ROOT) not in where.stdout and site in where.stdout, where.stdout
    gen = subprocess.run([str(venv / "bin" / "tinyengine"), "gen", "mcunet-vww1", "--board", "qemu-m4", "--out",
                          "proj"], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    assert (work / "proj" / "src" / "model.c").is_file() and (work / "proj" / "src" / "te_conv.c").is_file()
    build = subprocess.run([str(venv / "bin" / "tinyengine"), "build", "proj"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "te_arena" in build.stdout or "arena" in build.stdout.lower(), build.stdout
