"""A papermill engine for headless runs that leaves widgets alone.

nbclient, under papermill, mirrors every `Output` widget: when a widget's output changes it
sends a comm message on the shell channel, while it is itself waiting on that channel for the
cell's `execute_reply`. Now and then the reply is never seen and the run waits forever
(jupyter/nbclient#312; here: one widget cell of notebook 05 in a CI run). A headless run shows
no widget, so this engine simply does not mirror them; cells and their outputs are unchanged.
A cell that still runs longer than `CELL_TIMEOUT` fails with a timeout instead of hanging.
`execute_in_place` refreshes a committed notebook's outputs the same way.

Kernels talk to the runner over Unix sockets in Jupyter's runtime folder (`IPCKernelManager`),
not over TCP ports on the machine: no other user of a shared teaching server can reach them,
and ipykernel has no unencrypted TCP to warn about. Windows has no such sockets and keeps TCP.
A run can report each code cell as it starts (`progress`): cell n of m, with its first line.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbclient import NotebookClient
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines

from convscope.core.files import write_atomically
from convscope.course.alt_text import with_alt_text
from convscope.course.compact_figures import with_compact_figures
from convscope.course.slides import with_slide_metadata

ENGINE_NAME = "convscope-headless"
CELL_TIMEOUT = 900  # seconds; the slowest lesson cell (VGG16 top-9 over 24 crops) takes ~2 min


KERNEL_TRANSPORT = "tcp" if os.name == "nt" else "ipc"
# A Unix socket's path has at most 104 bytes on macOS (108 on Linux); the prefix gets "-N".
SOCKET_PATH_MAX = 100


def sockets_fit(prefix: Path) -> bool:
    """Whether a kernel's sockets, `<prefix>-<n>` (n up to two digits), fit a socket's path."""
    return len(os.fsencode(prefix)) + 3 <= SOCKET_PATH_MAX


def socket_prefix() -> str:
    """Where a kernel's sockets go: an absolute prefix (jupyter_client's default, "kernel-ipc",
    is relative, and a kernel started in the notebook's folder would listen where the client,
    working elsewhere, never connects) in Jupyter's runtime folder, private (0700), or in a
    private temporary folder when that path would be too long for a socket (a checkout deep
    in a home folder on macOS)."""
    name = f"convscope-{uuid.uuid4().hex[:12]}"
    folder = Path(jupyter_runtime_dir())
    if not sockets_fit(folder / name):
        folder = Path(tempfile.gettempdir()) / f"convscope-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return str(folder / name)


class IPCKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels listen on Unix sockets (`KERNEL_TRANSPORT`), their files
    beside the connection file in Jupyter's runtime folder and removed at shutdown."""

    def __init__(self, **kwargs):
        kwargs.setdefault("transport", KERNEL_TRANSPORT)
        super().__init__(**kwargs)
        if self.transport == "ipc":
            self.ip = socket_prefix()


def first_line(source: str) -> str:
    """A cell's first non-blank line, cut to 72 characters: how progress names the cell."""
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= 72 else line[:71] + "…"


class HeadlessClient(PapermillNotebookClient):
    """papermill's notebook client without nbclient's Output-widget mirroring, its kernel over
    IPC, reporting each code cell to `progress` (a callable taking one line) as it starts."""

    def __init__(self, *args, progress: Callable[[str], None] | None = None, **kwargs):
        kwargs.setdefault("kernel_manager_class", IPCKernelManager)
        super().__init__(*args, **kwargs)
        self.widget_registry = {}  # no widget class is mirrored: no comm message is sent back
        self.progress = progress
        if progress is not None:
            self.on_cell_start = self._report  # nbclient's hook, as each cell starts

    def _report(self, cell, cell_index: int) -> None:
        if cell.cell_type == "code":
            code = [i for i, other in enumerate(self.nb.cells) if other.cell_type == "code"]
            number = code.index(cell_index) + 1
            self.progress(f"cell {number} of {len(code)}: {first_line(cell.source)}")


class HeadlessEngine(NBClientEngine):
    """papermill's nbclient engine, executing with `HeadlessClient`."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man,
        kernel_name,
        log_output=False,
        stdout_file=None,
        stderr_file=None,
        start_timeout=60,
        execution_timeout=None,
        **kwargs,
    ):
        kwargs.pop("input_path", None)
        client = HeadlessClient(
            nb_man,
            kernel_name=kernel_name,
            timeout=execution_timeout or CELL_TIMEOUT,
            startup_timeout=start_timeout,
            log=logging.getLogger("papermill"),
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
            **kwargs,
        )
        return client.execute()


papermill_engines.register(ENGINE_NAME, HeadlessEngine)


def describe_in_place(path: Path) -> None:
    """Set a committed notebook's slide types, figures' alt text and figures' storage by their
    rules, without re-executing it (after editing only its markdown)."""
    notebook = nbformat.read(path, as_version=4)
    with_slide_metadata(notebook)
    with_alt_text(notebook)
    with_compact_figures(notebook)
    write_atomically(path, lambda temporary: nbformat.write(notebook, temporary))


def execute_in_place(path: Path, kernel_name: str = "python3") -> None:
    """Re-execute a committed notebook in its folder and write it back (`make outputs`).

    Widgets are not mirrored and no widget state is stored: it is volatile, and an Output
    widget's state would carry its figures a second time. Every cell's slide type is set by
    `course.slides`' rule, every figure's alt text by `course.alt_text`'s, and its storage by
    `course.compact_figures`'.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        kernel_manager_class=IPCKernelManager,
        timeout=CELL_TIMEOUT,
        store_widget_state=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.widget_registry = {}
    client.execute()
    notebook.metadata.pop("widgets", None)
    with_slide_metadata(notebook)  # the slide types follow the cells as edited
    with_alt_text(notebook)  # each figure described by the sentence after it
    with_compact_figures(notebook)  # stored as palette PNGs where nothing visible is lost
    write_atomically(path, lambda temporary: nbformat.write(notebook, temporary))
