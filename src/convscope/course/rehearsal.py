"""A class rehearsed on a JupyterHub: students who open a lesson at once, run it and move its
widget, as their browsers would, through the hub's and Jupyter's own APIs.

Each student (`attend`) follows the course's nbgitpuller link, so the lessons arrive as a
class gets them; starts a kernel on the lesson (a session, as JupyterLab makes one); runs
every code cell in order over the kernel's websocket (`course.kernel_channels`); then moves
one control of the lesson's widget as JupyterLab does when a slider is dragged, and times
each move until the widget's new figure arrives. `rehearse` lets a class do this
at once, one thread per student, and `server_memory` reads what each student's server and
kernel hold in memory. bench/bench_hub.py rehearses ten students on this machine; the tests
rehearse two.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import nbformat
import psutil
import requests

from convscope.core.errors import ConvscopeError
from convscope.course.hub import Hub
from convscope.course.kernel_channels import REPLY_TIMEOUT, KernelChannels, errors_in, figures_in
from convscope.course.launch import nbgitpuller_url


@dataclass
class Attendance:
    """One student's rehearsal; times in seconds.

    Attributes:
        server: from asking for the server until the hub reports it ready.
        pull: nbgitpuller's pull of the course into the home folder.
        kernel: from asking for the session until the kernel answers `kernel_info`.
        execution: every code cell of the lesson, in order; `cells` of them ran.
        errors: each failed cell's error name and message (empty when all ran).
        moves: each widget move until its figure arrived.
        first, moved, back: the widget's figure (PNG bytes) as first shown, after the first
            move, and after the last move (which returns the control to its first value).
    """

    name: str
    server: float = 0.0
    pull: float = 0.0
    kernel: float = 0.0
    execution: float = 0.0
    cells: int = 0
    errors: list[str] = field(default_factory=list)
    moves: list[float] = field(default_factory=list)
    first: bytes = b""
    moved: bytes = b""
    back: bytes = b""


def _wait_ready(hub: Hub, name: str) -> None:
    deadline = time.monotonic() + REPLY_TIMEOUT
    while time.monotonic() < deadline:
        server = hub.api("GET", f"/users/{name}")["servers"].get("")
        if server and server["ready"]:
            return
        if server is None or server.get("stopped"):
            raise ConvscopeError(f"{name}'s server stopped while starting (see the hub's log)")
        time.sleep(0.25)
    raise ConvscopeError(f"{name}'s server was not ready within {REPLY_TIMEOUT} s")


def _pull(hub: Hub, name: str, token: str, link: str) -> PurePosixPath:
    """Follow the nbgitpuller `link` as the student; returns the path it opens (relative to
    the home folder). The hub's `user-redirect/` in the link leads a logged-in browser to
    its own server, `user/<name>/`, taken here straight away (the hub's pages take a login
    cookie, not a token); nbgitpuller's page there streams the pull from its `api` path,
    as the page's script does."""
    headers = {"Authorization": f"token {token}"}
    own = link.replace("/hub/user-redirect/", f"/user/{name}/", 1)
    page = requests.get(own, headers=headers, timeout=60)
    if not page.ok or "/git-pull" not in page.url:
        raise ConvscopeError(f"{name}: the nbgitpuller link led to {page.url} ({page.status_code})")
    parts = urlsplit(page.url)
    query = parse_qs(parts.query)
    # the page's script names the folder: the repository's name (a trailing "/" dropped)
    folder = PurePosixPath(query["repo"][0].rstrip("/")).name
    stream = urlunsplit(
        parts._replace(
            path=parts.path.rstrip("/") + "/api",
            query=f"{parts.query}&{urlencode({'targetpath': folder})}",
        )
    )
    with requests.get(stream, headers=headers, stream=True, timeout=REPLY_TIMEOUT) as events:
        for line in events.iter_lines(decode_unicode=True):
            if not line.startswith("data:"):
                continue
            event = json.loads(line[len("data:") :])
            if event.get("phase") == "error":
                raise ConvscopeError(f"{name}: nbgitpuller failed: {event.get('message')}")
            if event.get("phase") == "finished":
                break
        else:
            raise ConvscopeError(f"{name}: nbgitpuller's stream ended before it finished")
    return PurePosixPath(query["urlpath"][0]).relative_to("lab/tree")


def _controls(channels: KernelChannels, description: str) -> list[tuple[str, float]]:
    """The comm id and first value of each open widget control labelled `description`."""
    return [
        (comm_id, state["value"])
        for comm_id, state in channels.widgets.items()
        if state.get("description") == description and "value" in state
    ]


def _control(channels: KernelChannels, description: str) -> tuple[str, float]:
    """The comm id and first value of the one open widget control labelled `description`."""
    found = _controls(channels, description)
    if len(found) != 1:
        labels = sorted({s.get("description", "") for s in channels.widgets.values()} - {""})
        raise ConvscopeError(
            f"control {description!r}: {len(found)} widgets carry it; the lesson's are {labels}"
        )
    return found[0]


def attend(
    hub: Hub,
    name: str,
    token: str,
    link: str,
    control: str,
    values: Sequence[float],
    pause: float = 0.0,
    start: threading.Barrier | None = None,
) -> Attendance:
    """One student's rehearsal (see the module's docstring): start the server, follow the
    nbgitpuller `link`, open the notebook it opens, run its code cells, then set the widget
    control labelled `control` to each of `values` in turn and back to where it started,
    looking at each new figure for `pause` seconds before the next move. `start`: a barrier
    the class passes together first."""
    seen = Attendance(name)
    if start is not None:
        start.wait()
    began = time.perf_counter()
    hub.api("POST", f"/users/{name}/server")
    _wait_ready(hub, name)
    seen.server = time.perf_counter() - began
    began = time.perf_counter()
    path = _pull(hub, name, token, link).as_posix()
    seen.pull = time.perf_counter() - began
    base, headers = f"{hub.url}/user/{name}", {"Authorization": f"token {token}"}
    notebook = requests.get(f"{base}/api/contents/{path}", headers=headers, timeout=60)
    notebook.raise_for_status()
    cells = nbformat.from_dict(notebook.json()["content"]).cells
    began = time.perf_counter()
    session = requests.post(
        f"{base}/api/sessions",
        headers=headers,
        json={"path": path, "type": "notebook", "kernel": {"name": "python3"}},
        timeout=REPLY_TIMEOUT,
    )
    session.raise_for_status()
    kernel = session.json()["kernel"]["id"]
    socket_url = base.replace("http", "ws", 1) + f"/api/kernels/{kernel}/channels"
    channels = KernelChannels(socket_url, token)
    try:
        channels.replies_to(channels.send("shell", "kernel_info_request", {}))
        seen.kernel = time.perf_counter() - began
        began = time.perf_counter()
        for cell in cells:
            if cell.cell_type != "code":
                continue
            answers = channels.execute(cell.source)
            seen.cells += 1
            seen.errors += errors_in(answers)
            figures = figures_in(answers)
            if figures and not seen.first and _controls(channels, control):
                seen.first = figures[-1]  # the figure of the cell that showed the control
            if seen.errors:
                break
        seen.execution = time.perf_counter() - began
        if seen.errors:
            return seen
        comm_id, initial = _control(channels, control)
        for number, value in enumerate([*values, initial]):
            time.sleep(pause if number else 0.0)
            took, answers = channels.move(comm_id, value)
            seen.moves.append(took)
            seen.errors += errors_in(answers)
            figure = figures_in(answers)[-1]
            seen.moved = seen.moved or figure
            seen.back = figure
    finally:
        channels.close()
    return seen


@dataclass
class Rehearsal:
    """A class's rehearsal: each student's `Attendance`, and each server's memory
    (`server_memory`, bytes per student, read after the last move)."""

    attendances: list[Attendance]
    memory: dict[str, dict[str, int]]


def rehearse(
    hub: Hub,
    students: int,
    repository: str,
    branch: str,
    lesson: str,
    control: str,
    values: Sequence[float],
    pause: float = 0.0,
) -> Rehearsal:
    """`students` students (`student-01`, ...) attend at once (`attend`), each in a thread of
    their own, the course pulled from `repository` at `branch` by its nbgitpuller link, each
    looking at every new figure for `pause` seconds. Each student's account and token are
    made first, as an instructor makes them before class.

    Returns:
        A `Rehearsal`; every server is left running (the hub stops them when it stops).
    """
    names = [f"student-{number:02d}" for number in range(1, students + 1)]
    tokens = {}
    for name in names:
        hub.api("POST", f"/users/{name}")
        tokens[name] = hub.api("POST", f"/users/{name}/tokens", json={"note": "rehearsal"})["token"]
    link = nbgitpuller_url(hub.url, lesson, repository, branch)
    barrier = threading.Barrier(students)
    results: dict[str, Attendance | BaseException] = {}

    def one(name: str) -> None:
        try:
            results[name] = attend(hub, name, tokens[name], link, control, values, pause, barrier)
        except BaseException as error:  # reported below, with the student's name
            results[name] = error

    threads = [threading.Thread(target=one, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = {name: r for name, r in results.items() if isinstance(r, BaseException)}
    if failed:
        name, error = next(iter(sorted(failed.items())))
        raise ConvscopeError(f"{len(failed)} of {students} students failed; {name}: {error}")
    return Rehearsal([results[name] for name in names], server_memory(names))


def server_memory(names: Sequence[str]) -> dict[str, dict[str, int]]:
    """What each student's Jupyter server and its kernels hold in memory on this machine, in
    bytes: `uss`, memory no other process shares (what one more student adds), `pss`
    (shared pages split among the processes that map them) and `rss` (every page mapped,
    shared libraries counted again in every process). A server is found by the
    `JUPYTERHUB_USER` in its environment; its kernels are its child processes. Another user's
    processes can be read only by root: run it as the hub's user, or as root for a hub of
    system accounts (`processes` stays 0 for a student whose server was not read)."""
    memory = {name: {"uss": 0, "pss": 0, "rss": 0, "processes": 0} for name in names}
    for process in psutil.process_iter():
        try:
            user = process.environ().get("JUPYTERHUB_USER")
            if user not in memory or (process.parent() and _is_server_of(process.parent(), user)):
                continue
            for member in [process, *process.children(recursive=True)]:
                full = member.memory_full_info()
                for key in ("uss", "pss", "rss"):
                    memory[user][key] += getattr(full, key)
                memory[user]["processes"] += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return memory


def _is_server_of(process: psutil.Process, user: str) -> bool:
    """Whether `process` already counts as `user`'s server (a kernel's parent)."""
    try:
        return process.environ().get("JUPYTERHUB_USER") == user
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
