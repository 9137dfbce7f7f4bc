"""Start and stop the real NDIF 0.1.2 server stack on 127.0.0.1 (for the ``ndif`` tests and the benchmark).

Processes, each in its own process group, all killed by process group in :meth:`NdifStack.stop`:
Redis, a Ray head node (``--num-cpus 2 --num-gpus 1``: NDIF's controller only places models on a node
that reports a GPU; nothing here uses one), NDIF's controller (a detached Ray actor launched by a
short-lived driver), its dispatcher, its API (uvicorn) and moto as the S3 store.

The model is a tiny seeded GPT-2 saved to a temporary directory by the caller; its nnsight model key
names that directory. The Ray workers get this directory on ``PYTHONPATH`` (for :mod:`iw_ndif_cpu`) and
not the repository root, so ``interp_widget`` is not importable on the server: the client ships it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_key(path: str) -> str:
    data = {"repo_id": path, "revision": None, "task": "text-generation"}
    return "nnsight.modeling.transformers.TransformersModel:" + json.dumps(data)


@dataclass
class NdifStack:
    model_dir: str
    startup_timeout: float = float(os.environ.get("IW_NDIF_STARTUP_TIMEOUT", "240"))
    env_extra: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    pgids: set[int] = field(default_factory=set)
    ports: dict[str, int] = field(default_factory=dict)
    workdir: str = ""
    host: str = ""
    redis_url: str = ""

    @property
    def key(self) -> str:
        return model_key(self.model_dir)

    def _env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NDIF_", "RAY_"))}
        env.pop("PYTHONPATH", None)
        env.update(self.base_env)
        env.update(extra)
        return env

    def _spawn(self, name: str, args: list[str], **extra: str) -> subprocess.Popen:
        log = open(Path(self.workdir) / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, env=self._env(**extra), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.workdir)
        self.procs[name] = proc
        self.pgids.add(proc.pid)
        return proc

    def extra_api(self, name: str, app: str = "ndif.services.api.app:app", **env: str) -> str:
        """Another API process on the same Redis and Ray (e.g. with version gating or authentication
        on); returns its URL once it answers."""
        port = free_port()
        self._spawn(name, [str(BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port),
                           "--log-level", "warning"], **env)
        url = f"http://127.0.0.1:{port}"
        self._wait(name, lambda: _get(f"{url}/ping") == 200, time.time() + self.startup_timeout)
        return url

    def log(self, name: str) -> str:
        p = Path(self.workdir) / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def _wait(self, what: str, ok: Any, deadline: float) -> None:
        while time.time() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None and name != "controller":
                    msg = f"{name} exited with {proc.returncode} while waiting for {what}:\n{self.log(name)[-3000:]}"
                    raise RuntimeError(msg)
            with contextlib.suppress(Exception):
                if ok():
                    return
            time.sleep(0.3)
        msg = f"timed out waiting for {what}"
        raise TimeoutError(msg)

    def start(self) -> NdifStack:
        self.workdir = tempfile.mkdtemp(prefix="iw-ndif-")
        deadline = time.time() + self.startup_timeout
        redis_port, gcs_port, client_port, api_port, s3_port, dash_port, agent_port, metrics_port = (
            free_port() for _ in range(8))
        self.ports = {"redis": redis_port, "api": api_port, "s3": s3_port, "ray client": client_port,
                      "ray dashboard": dash_port, "ray gcs": gcs_port}
        self.redis_url = f"redis://127.0.0.1:{redis_port}"
        self.host = f"http://127.0.0.1:{api_port}"
        self.base_env = {
            "NDIF_REDIS_URL": self.redis_url,
            "NDIF_RAY_ADDRESS": f"ray://127.0.0.1:{client_port}",
            "RAY_ADDRESS": f"127.0.0.1:{gcs_port}",
            "NDIF_OBJECT_STORE_URL": f"http://127.0.0.1:{s3_port}",
            "NDIF_OBJECT_STORE_ACCESS_KEY": "test", "NDIF_OBJECT_STORE_SECRET_KEY": "test",
            "NDIF_DEPLOYMENTS": self.key,
            "NDIF_MODEL_IMPORT_PATH": "iw_ndif_cpu.CpuModelActor",
            "NDIF_CONTROLLER_IMPORT_PATH": "iw_ndif_cpu.ShimControllerActor",
            "NDIF_DEFAULT_DTYPE": "float32",
            "NDIF_CONTROLLER_SYNC_INTERVAL_S": "2",
            "PYTHONPATH": str(HERE),
            "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_IMPORT_WARNING": "1",
            # single-node mode: Ray advertises the loopback address instead of the machine's own
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            **self.env_extra,
        }
        atexit.register(self.stop)
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
                signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so that finally blocks (and stop) run
        try:
            self._spawn("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"])
            self._spawn("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)])
            mem = 4 * 2**30
            self._spawn("ray", [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                                f"--port={gcs_port}", f"--ray-client-server-port={client_port}",
                                "--num-cpus=2", "--num-gpus=1", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                                f"--dashboard-port={dash_port}", f"--dashboard-agent-listen-port={agent_port}",
                                f"--metrics-export-port={metrics_port}",
                                "--disable-usage-stats", f"--temp-dir={self.workdir}/ray",
                                "--resources=" + json.dumps({"head": 10, "cuda_memory_bytes": mem,
                                                              "cpu_memory_bytes": mem})])
            self._wait("redis", lambda: socket.create_connection(("127.0.0.1", redis_port), 1).close() is None,
                       deadline)
            self._wait("the Ray client server", lambda: socket.create_connection(("127.0.0.1", client_port), 1)
                       .close() is None, deadline)
            self._spawn("controller", [sys.executable, "-m", "ndif.services.ray.deployments.controller.controller"])
            self._spawn("dispatcher", [sys.executable, "-m", "ndif.services.api.queue.dispatcher"])
            self._spawn("api", [str(BIN / "uvicorn"), "ndif.services.api.app:app", "--host", "127.0.0.1",
                                "--port", str(api_port), "--log-level", "warning"])
            self._wait("the API", lambda: _get(f"{self.host}/connected") == 200, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every process group we started (TERM, then KILL), then remove the work directory."""
        if not self.procs:
            return
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        end = time.time() + 10
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, end - time.time()))
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.procs = {}
        if self.workdir and not os.environ.get("IW_NDIF_KEEP_LOGS"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def leftovers(self) -> list[int]:
        """Processes still alive that belong to this stack (their command line names its work directory
        or a Ray worker started from it), found through /proc."""
        out = []
        if not self.workdir:
            return out
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
                pgid = os.getpgid(int(d.name))
            except (OSError, ProcessLookupError, IndexError):
                continue
            if state != "Z" and int(d.name) != os.getpid() and (self.workdir in cmd or pgid in self.pgids):
                out.append(int(d.name))
        return out

    def listening(self) -> list[str]:
        """Addresses our processes listen on (from ``ss``), for the loopback-only check."""
        ours = {str(p) for p in self.leftovers()}
        try:
            text = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return []
        out = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 6 and any(f"pid={pid}," in parts[-1] for pid in ours):
                out.append(parts[3])
        return out


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as r:
        return int(r.status)



