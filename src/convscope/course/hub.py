"""A JupyterHub for a class on one machine: its proxy, its settings, starting and stopping it.

JupyterHub gives every student a Jupyter server of their own and routes to it through
configurable-http-proxy, a Node.js program. `install_proxy` installs that proxy with npm from
the lock beside this module (`hub_proxy/package-lock.json`: exact versions with their
hashes), once. `configure` fills a hub's settings (the `c` of a `jupyterhub_config.py`):

- JupyterLab opens by default; each student's server is this environment's
  `jupyterhub-singleuser`, so a student has the course's packages and kernel;
- each kernel runs torch on one thread, as `make test` does: on a shared server a kernel
  with one thread per core would fight every other kernel for the cores;
- kernels talk to their server over Unix sockets in a folder private to the student (as
  `course.headless` does; `kernel_sockets`), not TCP ports that any user of the machine
  could connect to;
- a service token, when `TOKEN_VARIABLE` holds one, lets the instructor's scripts (the rehearsal,
  `course.rehearsal`) create students, give them tokens and start their servers.

Accounts (`ACCOUNTS`): `"system"` is a class's: students log in with their accounts on the
machine (JupyterHub's PAM authenticator) and each server runs as its student
(`LocalProcessSpawner`; the hub runs as root). `"rehearsal"` is for trying the server out
with the service token: any name is a student, with a password no one is told
(`SharedPasswordAuthenticator`), and every server runs as the user who started the hub,
with a home folder under the hub's own folder (`SimpleLocalProcessSpawner`), which
JupyterHub itself says gives no isolation between users: never use it for a class.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from convscope.core.errors import ConvscopeError, unknown_name
from convscope.core.files import write_atomically, write_text_atomically
from convscope.course.headless import KERNEL_TRANSPORT, sockets_fit

try:
    import pwd  # system accounts: Unix only, as JupyterHub is
except ImportError:
    pwd = None

ACCOUNTS = ("system", "rehearsal")
PROXY_LOCK = Path(__file__).parent / "hub_proxy"  # package.json and package-lock.json
TOKEN_VARIABLE = "CONVSCOPE_HUB_TOKEN"
SERVICE = "course-tools"  # the name the service token's requests carry in the hub's log
HUB_COMMAND = str(Path(sys.executable).parent / "jupyterhub")
START_TIMEOUT = 300  # seconds for one student's server: ten starting at once on two cores
NODE_MAJOR = 20  # configurable-http-proxy 5.2.0 and its commander 14 ask for Node.js >= 20
# Jupyter refuses to run as root without --allow-root: only a rehearsal hub started by root
# runs the students' servers as root
ALLOW_ROOT = "--allow-root"
IPC = "--KernelManager.transport=ipc"


def install_proxy(folder: Path) -> Path:
    """configurable-http-proxy installed into `folder` by `npm ci` from the pinned lock, once
    (again when the lock changes); returns its executable.

    Raises:
        ConvscopeError: npm is missing or fails; nothing half-installed is left to be used.
    """
    folder = Path(folder)
    executable = folder / "node_modules" / ".bin" / "configurable-http-proxy"
    lock = (PROXY_LOCK / "package-lock.json").read_bytes()
    finished = folder / "installed-lock.json"  # written last: the lock of a finished install
    if executable.exists() and finished.exists() and finished.read_bytes() == lock:
        return executable
    _check_node()
    folder.mkdir(parents=True, exist_ok=True)
    finished.unlink(missing_ok=True)
    shutil.copy2(PROXY_LOCK / "package.json", folder / "package.json")
    shutil.copy2(PROXY_LOCK / "package-lock.json", folder / "package-lock.json")
    done = subprocess.run(  # --ignore-scripts: no package's install script runs (as root)
        ["npm", "ci", "--no-audit", "--no-fund", "--silent", "--ignore-scripts"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if done.returncode or not executable.exists():
        raise ConvscopeError(f"npm ci of the hub's proxy failed: {done.stderr.strip()[-500:]}")
    write_atomically(finished, lambda temporary: Path(temporary).write_bytes(lock))
    return executable


def _check_node() -> None:
    """Refuse a machine without npm, or with a Node.js older than `NODE_MAJOR`."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise ConvscopeError("the hub's proxy needs Node.js and npm (Debian: apt-get install npm)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    major = version.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < NODE_MAJOR:
        raise ConvscopeError(
            f"the hub's proxy needs Node.js {NODE_MAJOR} or newer; this machine has "
            f"{version.strip() or 'an unknown version'}"
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def configure(
    c, folder: Path, port: int, proxy: Path, accounts: str = "system", group: str = "students"
) -> None:
    """Fill a JupyterHub configuration `c` for a class (see the module's docstring).

    Args:
        folder: the hub's own files (database, cookie secret; rehearsal homes in `homes/`).
        port: where students connect (`http://<machine>:port`; put HTTPS in front for a class
            reached over a network).
        proxy: configurable-http-proxy's executable (`install_proxy`).
        accounts: one of `ACCOUNTS`.
        group: with system accounts, the members of this group may log in.
    """
    if accounts not in ACCOUNTS:
        raise unknown_name("accounts", accounts, ACCOUNTS)
    folder = Path(folder).resolve()
    c.JupyterHub.bind_url = (
        f"http://:{port}" if accounts == "system" else f"http://127.0.0.1:{port}"
    )
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{free_port()}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{free_port()}"
    c.ConfigurableHTTPProxy.command = [str(proxy)]
    c.JupyterHub.db_url = f"sqlite:///{folder / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(folder / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(folder / "jupyterhub.pid")
    c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
    c.Spawner.pre_spawn_hook = kernel_sockets(accounts, port)
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = c.Spawner.http_timeout = START_TIMEOUT
    c.Spawner.environment = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    token = os.environ.get(TOKEN_VARIABLE)
    if token:
        c.JupyterHub.services = [{"name": SERVICE, "api_token": token}]
        c.JupyterHub.load_roles = [
            {
                "name": SERVICE,
                "scopes": ["admin:users", "admin:servers", "tokens", "read:users"],
                "services": [SERVICE],
            }
        ]
    if accounts == "rehearsal":
        # any name logs in, with a password made at each start and told to no one: the
        # rehearsal uses tokens, and other users of the machine stay out of its servers,
        # which may run as root
        c.JupyterHub.authenticator_class = "shared-password"
        c.SharedPasswordAuthenticator.user_password = os.urandom(16).hex()
        c.Authenticator.allow_all = True
        c.JupyterHub.spawner_class = "simple"
        c.SimpleLocalProcessSpawner.home_dir_template = str(folder / "homes" / "{username}")
    else:  # JupyterHub's own defaults: PAM logins, each server run as its student
        c.JupyterHub.authenticator_class = "pam"
        c.JupyterHub.spawner_class = "localprocess"
        c.LocalAuthenticator.allowed_groups = {group}


def kernel_sockets(accounts: str, port: int) -> Callable:
    """JupyterHub's `pre_spawn_hook`: each student's server keeps its runtime files in a
    folder of its own, private to the student (0700, theirs), and its kernels talk to it
    over Unix sockets there where the platform has them and the sockets' paths fit
    (`sockets_fit`), else over TCP on 127.0.0.1.

    jupyter_client names a kernel's sockets after its connection file in the runtime folder
    (`<folder>/kernel-<id>-ipc-<n>`): an absolute path, so the kernel (started in its
    notebook's folder) and its server agree. The folders sit in one short folder (0711: each
    student reaches their own, no one lists them), where a home folder's
    `.local/share/jupyter/runtime` might be too long for a socket: `/run/convscope-hub-<port>`
    for system accounts (the hub runs as root; `/run` is emptied at boot, never aged like
    `/tmp`), a new temporary folder for a rehearsal. Each is made again when missing.
    """
    roots: list[Path] = []

    def root() -> Path:
        if accounts == "system":
            made = Path(f"/run/convscope-hub-{port}")
            made.mkdir(mode=0o711, exist_ok=True)
        elif roots and roots[0].is_dir():
            return roots[0]
        else:
            made = Path(tempfile.mkdtemp(prefix="convscope-hub-"))
            roots[:] = [made]
        made.chmod(0o711)
        return made

    def prepare(spawner) -> None:
        name = spawner.user.name
        folder = root() / name
        folder.mkdir(mode=0o700, exist_ok=True)
        if accounts == "system":  # the student's server runs as the student
            account = pwd.getpwnam(name)
            os.chown(folder, account.pw_uid, account.pw_gid)
        spawner.environment = {**spawner.environment, "JUPYTER_RUNTIME_DIR": str(folder)}
        # jupyter_client's prefix: the connection file's name, "kernel-<id>", and "-ipc"
        fits = KERNEL_TRANSPORT == "ipc" and sockets_fit(folder / f"kernel-{uuid.UUID(int=0)}-ipc")
        as_root = accounts == "rehearsal" and hasattr(os, "geteuid") and os.geteuid() == 0
        ours = [flag for flag, wanted in ((ALLOW_ROOT, as_root), (IPC, fits)) if wanted]
        # the instructor's own --Spawner.args stay; ours are set again at every start
        spawner.args = [arg for arg in spawner.args if arg not in (ALLOW_ROOT, IPC)] + ours

    return prepare


def write_hub_config(
    folder: Path, port: int, proxy: Path, accounts: str = "system", group: str = "students"
) -> Path:
    """`folder/jupyterhub_config.py`: `configure` with these arguments, for `jupyterhub -f`.
    Written again at every start: further settings go on JupyterHub's command line
    (`python -m convscope hub ... -- --JupyterHub.ssl_cert=...`)."""
    if accounts not in ACCOUNTS:
        raise unknown_name("accounts", accounts, ACCOUNTS)
    folder = Path(folder).resolve()
    settings = f"folder={str(folder)!r}, port={port}, proxy={str(Path(proxy).resolve())!r}"
    text = (
        "# Written by `python -m convscope hub`; JupyterHub reads it (jupyterhub -f this file)\n"
        "from convscope.course.hub import configure\n\n"
        f"configure(c, {settings}, accounts={accounts!r}, group={group!r})  # noqa: F821\n"
    )
    path = folder / "jupyterhub_config.py"
    write_text_atomically(path, text)
    return path


@dataclass
class Hub:
    """A running hub: its address, the service token and its process."""

    url: str
    token: str
    process: subprocess.Popen

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> dict:
        """One call of the hub's REST API (`/hub/api` + `path`), as the service or with
        `token`; returns the JSON answer (`{}` when there is none).

        Raises:
            ConvscopeError: the hub answered with an error status (its message quoted).
        """
        answer = requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {token or self.token}"},
            timeout=60,
            **kwargs,
        )
        if answer.status_code >= 400:
            raise ConvscopeError(f"hub {method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json() if answer.content else {}


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise ConvscopeError(f"the hub stopped at start (exit {process.returncode}):\n{tail}")
        try:
            if requests.get(f"{url}/hub/api", timeout=5).ok:
                return
        except requests.RequestException:  # not listening yet, or too busy to answer
            pass
        time.sleep(0.25)
    raise ConvscopeError(f"the hub at {url} did not answer within {timeout:.0f} s (log: {log})")


@contextmanager
def running_hub(
    folder: Path, proxy: Path, accounts: str = "rehearsal", start_timeout: float = 120
) -> Iterator[Hub]:
    """A hub started by `python -m convscope hub` (the README's recipe) in `folder`, on a free
    port, with a new service token; stopped on leaving, with every student's server.

    Its log is `folder/hub.log`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    token, port = os.urandom(16).hex(), free_port()
    command = [sys.executable, "-m", "convscope", "hub", "--folder", str(folder)]
    command += ["--port", str(port), "--proxy", str(proxy), "--accounts", accounts]
    log = folder / "hub.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, TOKEN_VARIABLE: token},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches the hub only through us
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log, start_timeout)
        yield Hub(url, token, process)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM: the hub stops every server and its proxy. Then SIGKILL to any of them still
    running after a minute (each runs in a session of its own, so they are found as the
    hub's descendants before it is stopped)."""
    try:
        started = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        started = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _, alive = psutil.wait_procs(started, timeout=10)
    for left in alive:
        try:
            left.kill()
        except psutil.NoSuchProcess:
            pass
