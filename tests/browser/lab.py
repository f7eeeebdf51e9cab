"""A JupyterLab server and a headless Chromium for the browser tests, both kept off the network.

The server listens on 127.0.0.1 only, on a fixed port per test worker with a fixed token, and
every directory it writes to (config, runtime, data, settings, workspaces, caches, IPython,
matplotlib, npm) lies inside the test's temporary folder, as do Chromium's home and config:
nothing reaches the home directory. It serves copies of the notebooks, and autosave is off, so
the committed notebooks are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# One server per pytest-xdist worker (gw0, gw1, ...), each on its own port.
PORT = 18765 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
TOKEN = "convscope-browser-test"
HOST = "127.0.0.1"
BASE_URL = f"http://{HOST}:{PORT}"
CHROMIUM = os.environ.get("CONVSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# JupyterLab user settings: every cell attached to the page (JupyterLab 4 otherwise renders
# only visible cells), no news or update notifications over the page, no autosave.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}


def lab_environment(root: Path) -> dict[str, str]:
    """Environment variables that put everything JupyterLab and the kernel write under `root`."""
    folders = {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTERLAB_SETTINGS_DIR": "settings",
        "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
        "XDG_CACHE_HOME": "cache",
        "IPYTHONDIR": "ipython",
        "MPLCONFIGDIR": "matplotlib",
        "HOME": "home",  # anything not covered above lands here, not in the real home
    }
    environment = dict(os.environ)
    for variable, folder in folders.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        environment[variable] = str(root / folder)
    environment["OMP_WAIT_POLICY"] = "PASSIVE"  # see the Makefile
    environment["NPM_CONFIG_CACHE"] = str(root / "cache" / "npm")  # npm writes logs there
    # jupyter-lsp looks for language servers through npm: not needed to run notebooks
    server_config = {"ServerApp": {"jpserver_extensions": {"jupyter_lsp": False}}}
    (root / "config" / "jupyter_server_config.json").write_text(json.dumps(server_config))
    for plugin, values in LAB_SETTINGS.items():
        path = root / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return environment


def browser_environment(root: Path) -> dict[str, str]:
    """Chromium's home, config and cache (crash-report settings among them) under `root`."""
    home = root / "chromium-home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    (home / ".cache").mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }


def _port_is_free() -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, PORT)) != 0


def api(path: str, method: str = "GET") -> object:
    """One call to the server's REST API, authenticated by the token."""
    request = urllib.request.Request(
        f"{BASE_URL}{path}", method=method, headers={"Authorization": f"token {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


class LabServer:
    """`jupyter lab` on `BASE_URL`, serving a copy of `notebooks` from `root / "notebooks"`."""

    def __init__(self, root: Path, notebooks: Path):
        if not _port_is_free():
            raise RuntimeError(f"port {PORT} on {HOST} is taken: stop what listens there")
        self.root = root
        self.notebook_dir = root / "notebooks"
        shutil.copytree(notebooks, self.notebook_dir)
        self.log_path = root / "lab.log"
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--ServerApp.ip={HOST}",
            f"--ServerApp.port={PORT}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={self.notebook_dir}",
            "--allow-root",
        ]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command, env=lab_environment(root), stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_until_up(timeout=90)

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited:\n{self.log()}")
            try:
                api("/api/status")
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer in {timeout} s:\n{self.log()}")

    def log(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def url(self, notebook: str) -> str:
        """The notebook in a fresh workspace (`reset`: no tabs restored from the last page)."""
        return f"{BASE_URL}/lab/tree/{notebook}?reset&token={TOKEN}"

    def shut_down_kernels(self) -> None:
        for session in api("/api/sessions"):
            api(f"/api/sessions/{session['id']}", method="DELETE")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
