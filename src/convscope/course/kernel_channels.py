"""A kernel's websocket on a Jupyter server, speaking Jupyter's messages as a browser does:
run code and collect what answers it, follow the widgets the kernel opens and closes, and
move a widget control by the comm `update` message JupyterLab sends when a slider is
dragged, timed until the new figure arrives (`course.rehearsal`'s students use it).
"""

from __future__ import annotations

import json
import time
import uuid

import websocket

from convscope.core.errors import ConvscopeError

REPLY_TIMEOUT = 600  # seconds for one cell's reply: ten kernels share two cores


class KernelChannels:
    """A kernel's websocket on a student's server, speaking Jupyter's messages as JSON."""

    def __init__(self, url: str, token: str) -> None:
        self.session = uuid.uuid4().hex
        self.socket = websocket.create_connection(
            f"{url}?session_id={self.session}",
            header=[f"Authorization: token {token}"],
            timeout=REPLY_TIMEOUT,
        )
        self.widgets: dict[str, dict] = {}  # comm id -> the widget's state when opened

    def send(self, channel: str, kind: str, content: dict) -> str:
        """Send one message; returns its id."""
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": kind,
            "session": self.session,
            "username": "student",
            "version": "5.3",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
        self.socket.send(json.dumps({**message, "channel": channel, "buffers": []}))
        return msg_id

    def receive(self, deadline: float) -> dict:
        """The next message; widgets opened or closed are followed.

        Raises:
            ConvscopeError: the kernel died or restarted, or `deadline` (monotonic) passed.
        """
        if time.monotonic() > deadline:
            raise ConvscopeError(f"the kernel sent no answer within {REPLY_TIMEOUT} s")
        message = json.loads(self.socket.recv())
        kind, content = message["header"]["msg_type"], message["content"]
        if kind == "comm_open":
            self.widgets[content["comm_id"]] = content["data"].get("state", {})
        elif kind == "comm_close":
            self.widgets.pop(content["comm_id"], None)
        elif kind == "status" and content["execution_state"] in ("dead", "restarting"):
            raise ConvscopeError(f"the kernel is {content['execution_state']}")
        return message

    def replies_to(self, msg_id: str) -> list[dict]:
        """Every message answering `msg_id` until the kernel is idle again and the shell has
        replied."""
        answers, idle, replied = [], False, False
        deadline = time.monotonic() + REPLY_TIMEOUT
        while not (idle and replied):
            message = self.receive(deadline)
            kind = message["header"]["msg_type"]
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            answers.append(message)
            idle = idle or (kind == "status" and message["content"]["execution_state"] == "idle")
            replied = replied or (message["channel"] == "shell")
        return answers

    def execute(self, code: str) -> list[dict]:
        """Run `code`; returns the messages answering it."""
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        return self.replies_to(self.send("shell", "execute_request", content))

    def move(self, comm_id: str, value) -> tuple[float, list[dict]]:
        """Set a widget's `value` as a browser does; the seconds until the first figure
        answering it arrived, and every message answering it."""
        start = time.perf_counter()
        content = {
            "comm_id": comm_id,
            "data": {"method": "update", "state": {"value": value}, "buffer_paths": []},
        }
        msg_id = self.send("shell", "comm_msg", content)
        arrived, answers = None, []
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            message = self.receive(deadline)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            answers.append(message)
            if arrived is None and figure_of(message):
                arrived = time.perf_counter() - start
            if message["header"]["msg_type"] == "status" and (
                message["content"]["execution_state"] == "idle"
            ):
                break
        if arrived is None:
            raise ConvscopeError(f"moving widget {comm_id} to {value!r} showed no figure")
        return arrived, answers

    def close(self) -> None:
        self.socket.close()


def figures_in(answers: list[dict]) -> list[bytes]:
    """The PNG of every display message among `answers`, in order."""
    return [figure for figure in map(figure_of, answers) if figure]


def figure_of(message: dict) -> bytes:
    """The PNG of a display message (b"" for any other message)."""
    if message["header"]["msg_type"] not in ("display_data", "update_display_data"):
        return b""
    data = message["content"]["data"].get("image/png", "")
    return data.encode() if data else b""


def errors_in(answers: list[dict]) -> list[str]:
    return [
        f"{message['content']['ename']}: {message['content']['evalue']}"
        for message in answers
        if message["header"]["msg_type"] == "error"
    ]
