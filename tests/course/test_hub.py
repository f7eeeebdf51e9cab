"""A real JupyterHub on this machine: the README's `python -m convscope hub`, its proxy from
npm, and two students who pull the course by its nbgitpuller link, run lesson 01 and move its
widget (bench/bench_hub.py times ten)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import psutil
import pytest
from jupyterhub.app import JupyterHub
from traitlets.config import Config

from convscope.__main__ import main
from convscope.core.errors import ConvscopeError
from convscope.course import hub as hub_module
from convscope.course.hub import (
    IPC,
    configure,
    free_port,
    install_proxy,
    kernel_sockets,
    running_hub,
    write_hub_config,
)
from convscope.course.rehearsal import rehearse, server_memory

ROOT = Path(__file__).resolve().parents[2]
LESSON = "01_designer_filters.ipynb"


def branch_of(root: Path) -> str:
    """The branch checked out at `root`, which nbgitpuller pulls (the tests run on a branch)."""
    name = subprocess.run(
        ["git", "-C", str(root), "branch", "--show-current"], capture_output=True, text=True
    ).stdout.strip()
    if not name:
        pytest.skip("the repository is not on a branch (detached HEAD): nothing to pull")
    return name


def running(pids: list[int], wait: float = 30.0) -> list[int]:
    """Those of `pids` still running after up to `wait` seconds (a zombie has stopped: only
    its exit status waits for a parent to read it)."""
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)


@pytest.fixture(scope="module")
def proxy():
    return install_proxy(ROOT / "build" / "hub-proxy")


def test_two_students_pull_run_lesson_01_and_move_its_widget(proxy, tmp_path):
    committed = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"HEAD:notebooks/{LESSON}"], capture_output=True
    ).stdout
    code_cells = sum(c.cell_type == "code" for c in nbformat.reads(committed, as_version=4).cells)
    with running_hub(tmp_path / "hub", proxy) as hub:
        rehearsal = rehearse(
            hub, 2, ROOT.as_uri(), branch_of(ROOT), LESSON, control="σ", values=[2.5, 0.5]
        )
        started = psutil.Process(hub.process.pid).children(recursive=True)
        pids = [process.pid for process in started]
        kernels = [p for p in started if "ipykernel_launcher" in p.cmdline()]
        # each kernel talks to its server over Unix sockets in the student's own runtime folder
        # (its connection file says where; the kernel removes both when it stops)
        assert len(kernels) == 2
        for kernel in kernels:
            connection = Path(kernel.cmdline()[kernel.cmdline().index("-f") + 1])
            settings = json.loads(connection.read_text())
            assert settings["transport"] == "ipc"
            assert settings["ip"].startswith(str(connection.parent) + "/")
            assert Path(f"{settings['ip']}-{settings['shell_port']}").is_socket()
            assert connection.parent.stat().st_mode & 0o777 == 0o700
    for seen in rehearsal.attendances:
        assert seen.errors == [] and seen.cells == code_cells, seen.name
        home = tmp_path / "hub" / "homes" / seen.name
        assert (home / ROOT.name / "notebooks" / LESSON).read_bytes() == committed
        assert len(seen.moves) == 3 and all(took > 0 for took in seen.moves)
        # σ 2.5 blurs more than σ 1: a new picture; back at σ 1: the first picture, exactly
        assert seen.first and seen.moved != seen.first and seen.back == seen.first
    for name, memory in rehearsal.memory.items():
        assert memory["processes"] == 2, name  # the server and the lesson's kernel
        # torch alone is over 100 MB in a kernel, and no other process shares a kernel's data
        assert memory["uss"] > 100 * 2**20, name
    assert pids and not running(pids)  # the servers, kernels and proxy all stopped with the hub
    assert server_memory([seen.name for seen in rehearsal.attendances]) == {
        seen.name: {"uss": 0, "pss": 0, "rss": 0, "processes": 0} for seen in rehearsal.attendances
    }


def test_a_class_server_logs_in_system_accounts_of_one_group(tmp_path):
    config = Config()
    configure(config, tmp_path, 8000, tmp_path / "proxy", "system", group="ml-course")
    hub = JupyterHub(config=config)
    assert hub.authenticator_class.__name__ == "PAMAuthenticator"
    assert hub.spawner_class.__name__ == "LocalProcessSpawner"
    # read by the authenticator itself: a misspelt setting would leave its default, no group
    assert hub.authenticator_class(parent=hub).allowed_groups == {"ml-course"}
    assert config.Spawner.environment["OMP_NUM_THREADS"] == "1"
    assert Path(config.Spawner.cmd[0]).name == "jupyterhub-singleuser"
    rehearsal = Config()
    configure(rehearsal, tmp_path, 8000, tmp_path / "proxy", "rehearsal")
    hub = JupyterHub(config=rehearsal)
    assert hub.spawner_class.__name__ == "SimpleLocalProcessSpawner"
    authenticator = hub.authenticator_class(parent=hub)
    assert type(authenticator).__name__ == "SharedPasswordAuthenticator"
    assert len(authenticator.user_password) == 32  # the login page asks for it; no one has it


class Spawner:
    """What the hook reads and writes of a JupyterHub spawner."""

    def __init__(self, name: str, args: list[str]) -> None:
        self.user = SimpleNamespace(name=name)
        self.environment = {"OMP_NUM_THREADS": "1"}
        self.args = args


def test_each_student_gets_a_private_runtime_folder_and_unix_sockets_where_they_fit():
    prepare = kernel_sockets("rehearsal", 8000)
    student = Spawner("ann", ["--ServerApp.iopub_data_rate_limit=1e9"])
    prepare(student)
    prepare(student)  # a second start: the same flags, not twice
    folder = Path(student.environment["JUPYTER_RUNTIME_DIR"])
    assert folder.name == "ann" and folder.stat().st_mode & 0o777 == 0o700
    assert folder.parent.stat().st_mode & 0o777 == 0o711
    root = ["--allow-root"] if os.geteuid() == 0 else []
    assert student.args == ["--ServerApp.iopub_data_rate_limit=1e9", *root, IPC]
    long_name = Spawner("s" * 80, [])  # its sockets' paths would pass a socket's limit
    prepare(long_name)
    assert long_name.args == root  # TCP on 127.0.0.1
    shutil.rmtree(folder.parent)
    prepare(student)  # the folder went (a cleaned /tmp): made again
    assert Path(student.environment["JUPYTER_RUNTIME_DIR"]).is_dir()
    shutil.rmtree(Path(student.environment["JUPYTER_RUNTIME_DIR"]).parent)


def test_a_system_account_owns_its_runtime_folder(monkeypatch):
    port = free_port()
    if not os.access("/run", os.W_OK):
        pytest.skip("system accounts' folders go in /run, which only root may write")
    account = SimpleNamespace(pw_uid=os.getuid() + 1, pw_gid=os.getgid() + 1)
    monkeypatch.setattr(hub_module.pwd, "getpwnam", {"bob": account}.__getitem__)
    try:
        student = Spawner("bob", [])
        kernel_sockets("system", port)(student)
        folder = Path(student.environment["JUPYTER_RUNTIME_DIR"])
        assert folder == Path(f"/run/convscope-hub-{port}/bob")
        assert (folder.stat().st_uid, folder.stat().st_gid) == (account.pw_uid, account.pw_gid)
        assert folder.stat().st_mode & 0o777 == 0o700
        assert student.args == [IPC]  # never --allow-root: the server runs as its student
    finally:
        shutil.rmtree(f"/run/convscope-hub-{port}", ignore_errors=True)


def test_an_old_node_is_refused_before_npm_runs(tmp_path, monkeypatch):
    for tool, text in (("node", "v18.19.0"), ("npm", "10.2.3")):
        (tmp_path / tool).write_text(f"#!/bin/sh\necho {text}\n")
        (tmp_path / tool).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        ConvscopeError, match="needs Node.js 20 or newer; this machine has v18.19.0"
    ):
        install_proxy(tmp_path / "proxy")
    assert not (tmp_path / "proxy").exists()


def test_the_written_settings_are_what_configure_makes(tmp_path):
    path = write_hub_config(tmp_path, 8123, tmp_path / "proxy", "system", "ml-course")
    loaded = Config()
    exec(compile(path.read_text(), str(path), "exec"), {"c": loaded})  # as JupyterHub does
    assert loaded.JupyterHub.bind_url == "http://:8123"
    assert loaded.ConfigurableHTTPProxy.command == [str(tmp_path / "proxy")]
    assert loaded.LocalAuthenticator.allowed_groups == {"ml-course"}


def test_bad_accounts_are_named():
    with pytest.raises(
        ConvscopeError, match="unknown accounts 'guests'; choose one of: system, rehearsal"
    ):
        configure(Config(), Path("."), 8000, Path("proxy"), "guests")


def test_the_proxy_is_the_locks_version(proxy):
    lock = json.loads((proxy.parents[2] / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/configurable-http-proxy"]["version"]
    done = subprocess.run([str(proxy), "--version"], capture_output=True, text=True)
    assert done.stdout.strip() == pinned


def test_the_hub_command_names_a_bad_port_or_proxy(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["hub", "--port", "70000"])
    assert stopped.value.code == 2
    assert "--port: must be a TCP port, 1 to 65535; got 70000" in capsys.readouterr().err
    missing = tmp_path / "no-proxy"
    assert main(["hub", "--folder", str(tmp_path / "hub"), "--proxy", str(missing)]) == 2
    assert f"--proxy '{missing}' is not an executable file" in capsys.readouterr().err
