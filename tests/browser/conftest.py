"""Fixtures of the browser tests: one JupyterLab server and one Chromium for the whole module."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .lab import CHROMIUM, CHROMIUM_ARGS, HOST, LabServer, browser_environment

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "build" / "ui"


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> LabServer:
    server = LabServer(tmp_path_factory.mktemp("lab"), REPO / "notebooks")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `make browser` finds or installs one "
            "(scripts/find_chromium.sh), or point CONVSCOPE_CHROMIUM at a Chromium binary"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            env=browser_environment(tmp_path_factory.mktemp("browser")),
        )
        yield chromium
        chromium.close()


LOCAL = re.compile(rf"^(https?|wss?)://{re.escape(HOST)}(:\d+)?/")


def local_only(context) -> list[str]:
    """Abort every request of `context` outside 127.0.0.1; returns the list of those aborted."""
    aborted: list[str] = []

    def keep_local(route):
        if LOCAL.match(route.request.url):
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    context.route("**/*", keep_local)
    return aborted


@pytest.fixture()
def page(browser, lab):
    """A fresh page in which every request outside 127.0.0.1 is aborted (and remembered)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    aborted = local_only(context)
    page = context.new_page()
    page.aborted = aborted
    yield page
    context.close()
    lab.shut_down_kernels()
