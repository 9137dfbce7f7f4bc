"""Packaging: building the wheel runs the npm build; the wheel carries the widget bundle and the
prebuilt JupyterLab extension; installed without Node, ``jupyter labextension list`` reports it
enabled and OK; one version everywhere (package.json is the source)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSION = json.loads((ROOT / "package.json").read_text())["version"]
LABEXT = "share/jupyter/labextensions/interp-widget"

#: what a clean checkout has; build outputs are left out so that the wheel build must make them
_SKIP = {".git", ".venv", "node_modules", "dist", "build", "test-results", ".pytest_cache", ".ruff_cache",
         ".mypy_cache", "__pycache__", ".ipynb_checkpoints", ".whl", ".gl", "out"}
_BUILT = ("interp_widget/labextension", "interp_widget/widgets/static/attention.js", "labextension/lib")


def test_one_version_everywhere() -> None:
    ext = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert ext["version"] == VERSION, "labextension/package.json must carry package.json's version"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'path = "package.json"' in pyproject, "hatch must read the version from package.json"
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("interp-widget")
    except PackageNotFoundError:
        return  # running from a source tree that was never installed; the wheel test checks the rest
    assert installed == VERSION


def _clean_copy(dst: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).relative_to(ROOT)
        return {n for n in names if n in _SKIP or any((rel / n).as_posix() == b for b in _BUILT)}

    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=True)
    try:  # node_modules as hard links: fast, and npm in the copy cannot touch the original's links
        subprocess.run(["cp", "-al", str(ROOT / "node_modules"), str(dst / "node_modules")], check=True)
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT / "node_modules", dst / "node_modules", symlinks=True)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("building the wheel needs Node.js and npm")
    if not (ROOT / "node_modules" / "esbuild").is_dir():
        pytest.skip("run `npm ci` first: the wheel build uses the installed npm packages")
    src = tmp_path_factory.mktemp("src") / "interp-widget"
    _clean_copy(src)
    assert not (src / "interp_widget" / "widgets" / "static" / "attention.js").exists()
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    wheels = list(out.glob("interp_widget-*.whl"))
    assert len(wheels) == 1, wheels
    yield wheels[0]


@pytest.mark.slow
def test_wheel_carries_bundles_and_prebuilt_extension(wheel: Path) -> None:
    assert wheel.name.startswith(f"interp_widget-{VERSION}-"), wheel.name
    names = set(zipfile.ZipFile(wheel).namelist())
    data = f"interp_widget-{VERSION}.data/data/{LABEXT}"
    for required in ("interp_widget/widgets/static/attention.js", f"{data}/package.json", f"{data}/install.json",
                     "interp_widget/schema/tensor.py", "interp_widget/py.typed"):
        assert required in names, f"{required} missing from {wheel.name}"
    assert any(re.fullmatch(rf"{re.escape(data)}/static/remoteEntry\.[0-9a-f]+\.js", n) for n in names)
    with zipfile.ZipFile(wheel) as z:
        pkg = json.loads(z.read(f"{data}/package.json"))
        bundle = z.read("interp_widget/widgets/static/attention.js").decode()
        meta = z.read(f"interp_widget-{VERSION}.dist-info/METADATA").decode()
    assert pkg["name"] == "interp-widget" and pkg["version"] == VERSION
    assert "_build" in pkg["jupyterlab"], "not a prebuilt extension"
    assert re.search(rf"^Version: {re.escape(VERSION)}$", meta, re.M)
    assert "export" in bundle and not re.search(r"https?://(unpkg|cdn|esm\.sh|jsdelivr)", bundle), "no CDN"


@pytest.mark.slow
def test_installed_wheel_shows_the_extension_without_node(wheel: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--prefix", str(prefix),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    assert (prefix / LABEXT / "package.json").is_file()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        "HOME": str(tmp_path),
        "PATH": bin_dir,  # the venv's bin only: no node
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONNOUSERSITE": "1",
    }
    assert shutil.which("node", path=env["PATH"]) is None, "node must not be on PATH for this check"
    res = subprocess.run([sys.executable, "-m", "jupyterlab.labextensions", "list"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    out = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout + res.stderr)
    assert res.returncode == 0, out
    line = next((ln for ln in out.splitlines() if ln.strip().startswith("interp-widget ")), None)
    assert line is not None, out
    assert f"v{VERSION}" in line and "enabled" in line and "OK" in line, line

    # the installed package: its version is package.json's, and it finds its own extension
    site = sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)})
    code = ("import json, pathlib, interp_widget as iw; p = iw._jupyter_labextension_paths()[0]; "
            "d = pathlib.Path(iw.__file__).parent / p['src']; "
            "print(json.dumps([iw.__version__, json.loads((d / 'package.json').read_text())['version'], "
            "str(pathlib.Path(iw.__file__).parent)]))")
    res = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": site}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    py_version, ext_version, location = json.loads(res.stdout)
    assert location.startswith(str(prefix)), location
    assert py_version == ext_version == VERSION


def test_npm_build_makes_the_ensured_targets() -> None:
    """pyproject.toml's ensured-targets are the files `npm run build` writes."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    targets = re.search(r"ensured-targets = \[(.*?)\]", pyproject, re.S)
    assert targets is not None
    names = re.findall(r'"([^"]+)"', targets.group(1))
    # one bundle per anywidget entry (scripts/build-widgets.mjs): src/attention/index.ts and src/widgets/NAME.ts
    entries = sorted(p.stem for p in (ROOT / "src" / "widgets").glob("*.ts") if not p.name.endswith((".test.ts", ".d.ts")))
    assert set(names) == {"interp_widget/widgets/static/attention.js", "interp_widget/labextension/package.json",
                          *(f"interp_widget/widgets/static/{n}.js" for n in entries)}
    scripts = json.loads((ROOT / "package.json").read_text())["scripts"]
    assert "build:widgets" in scripts["build"] and "build:labextension" in scripts["build"]
    ext = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert ext["jupyterlab"]["outputDir"] == "../interp_widget/labextension"
    assert os.path.basename(ext["name"]) == "interp-widget"
