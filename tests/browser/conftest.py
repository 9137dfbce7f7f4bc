"""End-to-end harness: a real JupyterLab 4 server on 127.0.0.1 driven by Playwright in Debian's Chromium.

Fixtures
--------
``lab_server``  (session)  a JupyterLab server in a temporary root, config, data and runtime dir,
                           with a token; afterwards its kernels are shut down and it is killed by
                           process group (kernels it started and left behind are killed by pid).
``browser``     (session)  headless Chromium at ``/usr/bin/chromium`` (no ``playwright install``).
``page``        (function) a fresh browser context + page; console errors are kept on ``page.console_lines``.
``lab``         (function) a :class:`LabDriver` bound to ``page`` and ``lab_server``.

Tests that use these are marked ``@pytest.mark.browser`` and are skipped, with the reason,
only when ``/usr/bin/chromium`` is absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
REPO = Path(__file__).resolve().parents[2]
SKIP_REASON = f"{CHROMIUM} is absent: install Debian's chromium to run the browser tests"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("browser") is not None and not CHROMIUM.exists():
        pytest.skip(SKIP_REASON)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabServer:
    """A running ``python -m jupyterlab``: its URL, token, root dir and log."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.log_path = base / "server.log"
        self.port = _free_port()
        self.token = os.urandom(16).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        self._base = base
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    # --- lifecycle -----------------------------------------------------------
    def start(self, timeout: float = 90.0) -> None:
        base = self._base
        dirs = {k: base / k for k in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
        for d in (self.root, *dirs.values()):
            d.mkdir(parents=True, exist_ok=True)
        # no news / update toasts over the notebook
        notif = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notif.parent.mkdir(parents=True, exist_ok=True)
        notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        # no "build recommended" check: it spawns node for nothing (the lab extensions are prebuilt)
        labconfig = dirs["config"] / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(json.dumps({"buildAvailable": False, "buildCheck": False}))

        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            IPYTHONDIR=str(dirs["ipython"]),
            JUPYTER_PLATFORM_DIRS="1",
            # the kernel imports interp_widget from this checkout whether or not it is pip-installed
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
            PATH=os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", ""))),
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
        )
        env.pop("JUPYTER_PATH", None)
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.open_browser=False",
            "--ServerApp.disable_check_xsrf=False",
            f"--LabApp.user_settings_dir={dirs['settings']}",
            f"--LabApp.workspaces_dir={dirs['workspaces']}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.terminals_enabled=False",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            cmd.append("--allow-root")
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"JupyterLab exited with code {self.proc.returncode} before answering; log:\n{self.log_tail()}"
                raise RuntimeError(msg)
            try:
                if self.api("GET", "/api/status") is not None:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        self.stop()
        msg = f"JupyterLab did not answer on {self.url} within {timeout:.0f} s; log:\n{self.log_tail()}"
        raise RuntimeError(msg)

    def stop(self) -> None:
        try:
            self._stop()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self._kill_kernels()
            return
        for k in self._safe_kernels():  # kernels run in their own process groups: shut them down first
            with contextlib.suppress(urllib.error.URLError, OSError):
                self.api("DELETE", f"/api/kernels/{k['id']}")
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self._kill_kernels()

    def _safe_kernels(self) -> list[dict[str, Any]]:
        try:
            return self.kernels()
        except (urllib.error.URLError, OSError):
            return []

    def _kill_kernels(self) -> None:
        """Kill any kernel this server started that is still alive (its connection file is in our runtime dir)."""
        marker = str(self._base / "runtime")
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (proc_dir / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "ipykernel" in cmdline and marker in cmdline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(proc_dir.name), signal.SIGKILL)

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-n:]
            return "\n".join(line if len(line) < 400 else line[:400] + " [...]" for line in lines)
        except OSError:
            return "(no log)"

    # --- REST ------------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else {}

    def kernels(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/kernels"))

    def lab_url(self, notebook: str) -> str:
        # `reset`: start from an empty workspace, so the documents an earlier test left open are not
        # restored (a restored notebook starts a kernel of its own)
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    # --- notebooks -----------------------------------------------------------
    def write_notebook(self, name: str, cells: list[str]) -> Path:
        """Write a notebook of code cells (no outputs) into the server's root."""
        nb = {
            "cells": [
                {"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {}, "outputs": [],
                 "source": src}
                for i, src in enumerate(cells)
            ],
            "metadata": {
                "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        path = self.root / name
        path.write_text(json.dumps(nb, indent=1))
        return path

    def read_notebook(self, name: str) -> dict[str, Any]:
        return dict(json.loads((self.root / name).read_text()))


class LabDriver:
    """Drives JupyterLab in a page through ``window.jupyterapp`` (``expose_app_in_browser``).

    Clicks and hovers in tests go through Playwright; only notebook plumbing (run all, add a cell,
    save, shut the kernel down) goes through JupyterLab's own command/model API.
    """

    def __init__(self, page: Any, server: LabServer) -> None:
        self.page = page
        self.server = server
        self.path = ""

    def open(self, name: str, *, wait_kernel: bool = True, no_kernel: bool = False, timeout_ms: float = 60_000) -> None:
        """Open notebook ``name``; ``no_kernel``: as JupyterLab's "Open With > Notebook (no kernel)"."""
        self.path = name
        if no_kernel:
            self.page.goto(f"{self.server.url}/lab?reset&token={self.server.token}", wait_until="domcontentloaded")
            self.page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.commands)", timeout=timeout_ms)
            self.page.evaluate("async () => { await window.jupyterapp.restored; }")
            self.page.evaluate(
                """async (p) => { await window.jupyterapp.commands.execute('docmanager:open',
                      {path: p, factory: 'Notebook', kernelPreference: {shouldStart: false, shouldReuse: false}}); }""",
                name,
            )
        else:
            self.page.goto(self.server.lab_url(name), wait_until="domcontentloaded")
        self.page.wait_for_function(
            """(p) => { const a = window.jupyterapp; const w = a && a.shell.currentWidget;
                        return !!(w && w.context && w.context.path === p && w.content && w.content.model); }""",
            arg=name, timeout=timeout_ms,
        )
        self.page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.context.ready; }")
        if wait_kernel and not no_kernel:
            self.wait_kernel_idle(timeout_ms)

    def wait_kernel_idle(self, timeout_ms: float = 60_000) -> None:
        self.page.wait_for_function(
            """() => { const w = window.jupyterapp.shell.currentWidget;
                       const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                       return !!(k && k.status === 'idle' && k.connectionStatus === 'connected'); }""",
            timeout=timeout_ms,
        )

    def run_all(self, timeout_ms: float = 90_000) -> None:
        self.page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        self.wait_executed(timeout_ms)

    def wait_executed(self, timeout_ms: float = 90_000) -> None:
        """Wait until every code cell has an execution count (or one shows an error) and the kernel is idle."""
        self.page.wait_for_function(
            """() => { const w = window.jupyterapp.shell.currentWidget; const cells = w.content.model.cells;
                       for (let i = 0; i < cells.length; i++) { const c = cells.get(i);
                         if (c.type !== 'code') continue;
                         const outs = c.outputs.toJSON();
                         if (outs.some((o) => o.output_type === 'error')) return true;  // run-all stops here
                         if (c.executionCount === null || c.executionCount === undefined) return false; }
                       const k = w.sessionContext.session && w.sessionContext.session.kernel;
                       return !!(k && k.status === 'idle'); }""",
            timeout=timeout_ms,
        )

    def outputs(self, index: int) -> list[dict[str, Any]]:
        return list(self.page.evaluate(
            "(i) => window.jupyterapp.shell.currentWidget.content.model.cells.get(i).outputs.toJSON()", index
        ))

    def errors(self) -> list[str]:
        """Every error output in the notebook, as 'ename: evalue'."""
        found: list[str] = []
        n = int(self.page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.cells.length"))
        for i in range(n):
            for out in self.outputs(i):
                if out.get("output_type") == "error":
                    found.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
        return found

    def run_code(self, source: str, timeout_ms: float = 60_000) -> str:
        """Append a code cell, run it through JupyterLab, return its stdout (fails on an error output)."""
        index = int(self.page.evaluate(
            """async (src) => { const app = window.jupyterapp; const w = app.shell.currentWidget;
                                const m = w.content.model; const n = m.cells.length;
                                m.sharedModel.insertCell(n, {cell_type: 'code', source: src});
                                w.content.activeCellIndex = n;
                                await app.commands.execute('notebook:run-cell');
                                return n; }""",
            source,
        ))
        self.page.wait_for_function(
            """(i) => { const w = window.jupyterapp.shell.currentWidget; const c = w.content.model.cells.get(i);
                        const k = w.sessionContext.session.kernel;
                        return c.executionCount !== null && c.executionCount !== undefined && k.status === 'idle'; }""",
            arg=index, timeout=timeout_ms,
        )
        outs = self.outputs(index)
        errs = [f"{o.get('ename')}: {o.get('evalue')}" for o in outs if o.get("output_type") == "error"]
        if errs:
            msg = f"cell {source!r} raised: {errs}"
            raise AssertionError(msg)
        text = []
        for o in outs:
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                t = o.get("text", "")
                text.append("".join(t) if isinstance(t, list) else t)
        return "".join(text)

    def save(self) -> None:
        self.page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.context.save(); }")

    def shutdown_kernel(self, timeout_s: float = 30.0) -> None:
        """Shut the notebook's kernel down and wait until the server lists no kernel."""
        self.page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.shutdown(); }")
        deadline = time.monotonic() + timeout_s
        while self.server.kernels():
            if time.monotonic() > deadline:
                msg = f"kernels still running after shutdown: {self.server.kernels()}"
                raise AssertionError(msg)
            time.sleep(0.2)

    def close_all(self) -> None:
        self.page.evaluate("async () => { await window.jupyterapp.commands.execute('application:close-all'); }")


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    if not CHROMIUM.exists():
        pytest.skip(SKIP_REASON)
    server = LabServer(tmp_path_factory.mktemp("jupyterlab"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(SKIP_REASON)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    lines: list[str] = []
    pg.on("console", lambda m: lines.append(f"[{m.type}] {m.text}") if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: lines.append(f"[pageerror] {e}"))
    pg.console_lines = lines
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        out = REPO / "test-results"
        out.mkdir(exist_ok=True)
        shot = out / f"{request.node.name}.png"
        try:
            pg.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot: {shot}")
        except Exception as e:
            print(f"\n(no screenshot: {e})")
        print("browser console:\n" + "\n".join(lines[-40:]))
    context.close()


@pytest.fixture
def lab(page: Any, lab_server: LabServer, request: pytest.FixtureRequest) -> Iterator[LabDriver]:
    driver = LabDriver(page, lab_server)
    yield driver
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print("jupyterlab log:\n" + lab_server.log_tail())
    # leave no session or kernel behind for the next test
    for sess in lab_server.api("GET", "/api/sessions"):
        with contextlib.suppress(urllib.error.URLError):
            lab_server.api("DELETE", f"/api/sessions/{sess['id']}")
    for k in lab_server.kernels():
        with contextlib.suppress(urllib.error.URLError):
            lab_server.api("DELETE", f"/api/kernels/{k['id']}")
