"""One notebook open in JupyterLab, driven the way a student would: menus, mouse and keyboard."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Locator, Page

KERNEL_IDLE = "document.querySelector('#jp-main-statusbar')?.innerText.includes('| Idle')"
PROMPTS = (
    "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.innerText.trim())"
)
STARTED = f"() => {PROMPTS}.some(p => p !== '[ ]:')"
FINISHED = f"() => {KERNEL_IDLE} && !{PROMPTS}.includes('[*]:')"
# A notebook's budget is 60 s end to end on an idle two-core machine (README). Here its kernel has
# one thread and shares the two cores with a second notebook's kernel, JupyterLab and Chromium:
# lesson 07 took 71 s alone and over 120 s beside another notebook. Five budgets leave room for
# a slower CPU, and a kernel that hangs still fails the test within five minutes.
RUN_ALL_TIMEOUT = 5 * 60


class NotebookPage:
    """A notebook in a JupyterLab tab.

    Args:
        page: a Playwright page.
        url: the notebook's address on the server.
        shots: folder for screenshots, named `<stem>-<step>.png`.
    """

    def __init__(self, page: Page, url: str, shots: Path, stem: str):
        self.page, self.shots, self.stem = page, shots, stem
        page.goto(url)
        page.wait_for_selector(".jp-Notebook .jp-CodeCell")
        page.wait_for_function(KERNEL_IDLE, timeout=60_000)  # the status bar, not the prompt

    def menu(self, menu: str, entry: str) -> None:
        """Click `entry` in the menu bar's `menu`."""
        self.page.get_by_role("menuitem", name=menu, exact=True).click()
        self.page.get_by_role("menuitem", name=entry, exact=True).click()

    def run_all(self, timeout: float = RUN_ALL_TIMEOUT) -> None:
        """Clear every output, then Run ▸ Run All Cells and wait for the last cell to finish.

        Raises:
            AssertionError: a cell did not run (an error stopped the run); names the cell.
        """
        self.menu("Edit", "Clear Outputs of All Cells")
        self.menu("Run", "Run All Cells")
        self.page.wait_for_function(STARTED, timeout=30_000)
        self.page.wait_for_function(FINISHED, timeout=timeout * 1000, polling=250)
        prompts = self.page.evaluate(f"() => {PROMPTS}")
        numbered = [bool(re.fullmatch(r"\[\d+\]:", prompt)) for prompt in prompts]
        if not all(numbered):
            failed = self.page.locator(".jp-CodeCell").nth(max(numbered.index(False) - 1, 0))
            message = f"{self.stem}: a cell failed, the run stopped:\n{failed.inner_text()}"
            raise AssertionError(message)
        self.page.screenshot(path=self.shots / f"{self.stem}-ran.png", full_page=False)

    def widget(self, index: int = 0) -> Widget:
        """The `index`-th interactive widget of the notebook (0: the lesson's main one)."""
        panel = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        return Widget(self, panel.locator(".widget-interact").nth(index))


class Widget:
    """An `ipywidgets.interactive` view: its controls by description, and its figure."""

    def __init__(self, notebook: NotebookPage, root: Locator):
        self.notebook, self.root = notebook, root
        root.scroll_into_view_if_needed()

    def _control(self, kind: str, label: str) -> Locator:
        row = self.root.locator(f".widget-{kind}").filter(
            has=self.notebook.page.locator(".widget-label", has_text=re.compile(f"^{label}$"))
        )
        assert row.count() == 1, f"no single {kind} labelled {label!r}"
        return row

    def handle(self, label: str) -> Locator:
        return self._control("hslider", label).locator(".noUi-handle")

    def readout(self, label: str) -> Locator:
        return self._control("hslider", label).locator(".widget-readout")

    def select(self, label: str) -> Locator:
        return self._control("dropdown", label).locator("select")

    def figure(self) -> str | None:
        """The `src` of the output's image (a PNG data URL), or None while there is none."""
        images = self.root.locator(".widget-output img")
        return images.first.get_attribute("src") if images.count() else None

    def new_figure(self, previous: str | None, timeout: float = 60, settle: int = 3) -> str:
        """Wait for a figure other than `previous`, then until it and the kernel are still.

        A drag sends intermediate values, each drawing a figure: the image counts as settled
        after `settle` samples 0.15 s apart agree while the status bar says Idle.
        """
        page, deadline = self.notebook.page, time.monotonic() + timeout
        last, same = None, 0
        while time.monotonic() < deadline:
            current = self.figure()
            idle = page.evaluate(KERNEL_IDLE)
            if current is not None and current != previous and current == last and idle:
                same += 1
                if same >= settle:
                    return current
            else:
                same = 0
            last = current
            page.wait_for_timeout(150)
        raise AssertionError(f"{self.notebook.stem}: the figure did not change in {timeout} s")

    def screenshot(self, step: str) -> None:
        self.root.screenshot(path=self.notebook.shots / f"{self.notebook.stem}-{step}.png")
