"""A throw-away CouchDB-compatible server for tests and demos: PouchDB Server from npm.

>>> with PouchDBServer() as url:      # starts on a free 127.0.0.1 port, in memory
...     server = couchcore.Server(url)

The server runs in its own temporary directory (it writes ``config.json`` and
``log.txt`` there), with an admin account, and is stopped (its whole process group)
when the context exits, also on errors and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["PouchDBServer", "find_pouchdb_server", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_pouchdb_server(start: str | os.PathLike | None = None) -> str:
    """The ``pouchdb-server`` executable installed by ``npm ci`` in the repository."""
    env = os.environ.get("POUCHDB_SERVER")
    if env:
        return env
    here = Path(start or Path(__file__).resolve().parent)
    for folder in [here, *here.parents]:
        candidate = folder / "node_modules" / ".bin" / "pouchdb-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("pouchdb-server")
    if found:
        return found
    raise FileNotFoundError("pouchdb-server not found: run 'npm ci --ignore-scripts' in the repository")


class PouchDBServer:
    """Start PouchDB Server on a free loopback port; ``url`` includes the admin login."""

    def __init__(self, admin: tuple[str, str] = ("admin", "admin"), port: int | None = None,
                 executable: str | None = None, startup_timeout: float = 30.0) -> None:
        self.admin = admin
        self.port = port
        self.executable = executable
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        user, password = self.admin
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"<PouchDBServer 127.0.0.1:{self.port} running={self.running}>"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> str:
        exe = self.executable or find_pouchdb_server()
        self._tmp = tempfile.TemporaryDirectory(prefix="couchcore-pouchdb-")
        workdir = self._tmp.name
        user, password = self.admin
        with open(os.path.join(workdir, "config.json"), "w") as f:
            json.dump({"admins": {user: password}, "log": {"level": "error"}}, f)
        env = dict(os.environ)
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --unhandled-rejections=warn").strip()
        for attempt in range(5):
            port = self.port or free_port()
            self.process = subprocess.Popen(
                [exe, "--in-memory", "-n", "-o", "127.0.0.1", "-p", str(port), "-c", "config.json"],
                cwd=workdir,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(workdir, "stderr.txt"), "wb"),
                start_new_session=True,
            )
            self.port = port
            if self._wait_ready():
                return self.url
            self.stop(keep_tmp=True)
            if self.port is not None and attempt < 4:
                self.port = None  # the port may have been taken: try another
        raise RuntimeError(f"PouchDB Server did not start: {self._stderr()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def _stderr(self) -> str:
        if self._tmp is None:
            return ""
        try:
            return Path(self._tmp.name, "stderr.txt").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, keep_tmp: bool = False) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        if self._tmp is not None and not keep_tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
