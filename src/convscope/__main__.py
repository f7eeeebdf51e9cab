"""Command line: `python -m convscope train|convert|run|outputs|student|grade|slides|hub ...`
(`--help`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import yaml

from convscope.caffe.net import load_caffe
from convscope.caffe.weights import convert_to
from convscope.core.checkpoints import check_state_dict_fits, save_state_dict, save_weights
from convscope.core.errors import ConvscopeError
from convscope.core.files import writable_file, writable_folder
from convscope.course.decks import write_decks
from convscope.course.exercises import grade, release
from convscope.course.headless import describe_in_place, execute_in_place
from convscope.course.hub import (
    ACCOUNTS,
    HUB_COMMAND,
    install_proxy,
    write_hub_config,
)
from convscope.course.runner import plan_runs, run_notebooks, select_notebooks
from convscope.models.registry import MODELS, load_model
from convscope.models.training import (
    train_digit_classifier,
    train_digit_fcn,
    train_permuted_digits,
)

TRAINABLE = ("digits", "digits-permuted", "digit-fcn")


def _at_least_one(text: str) -> int:
    """An argparse type: an integer of at least 1 (`--epochs 0` would train nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def _port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    value = _at_least_one(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port, 1 to 65535; got {value}")
    return value


def _train(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    epochs = {"digits": 60, "digits-permuted": 80}.get(args.model)
    epochs = args.epochs if args.epochs is not None else epochs
    if args.out and args.model == "digit-fcn":
        writable_folder("--out", args.out)
    elif args.out:
        writable_file("--out", args.out)
    if args.model == "digits":
        model, heldout_accuracy = train_digit_classifier(epochs=epochs, seed=args.seed)
        out = Path(args.out) if args.out else MODELS["digits"].weights.path
        save_weights(model, out)
        print(f"held-out accuracy: {heldout_accuracy:.2%}")
        print(f"saved {out} in {time.perf_counter() - start:.0f} s")
        return 0
    if args.model == "digits-permuted":
        model, trained, heldout_accuracy = train_permuted_digits(epochs=epochs, seed=args.seed)
        out = Path(args.out) if args.out else MODELS["digits-permuted"].weights.path
        save_weights(model, out)
        print(f"accuracy on its permuted training labels: {trained:.2%}")
        print(f"held-out accuracy on the true labels: {heldout_accuracy:.2%}")
        print(f"saved {out} in {time.perf_counter() - start:.0f} s")
        return 0
    results = train_digit_fcn(seed=args.seed)
    print("model            pixel accuracy  mean IU   (200 scenes of held-out digits)")
    for variant, (net, pixel_accuracy, mean_iu) in results.items():
        name = f"digit-fcn{variant}"
        folder = Path(args.out) if args.out else MODELS[name].weights.path.parent
        save_weights(net, folder / MODELS[name].weights.filename)
        print(f"{name:15s}  {pixel_accuracy:14.2%}  {mean_iu:7.2%}")
    print(f"saved to {folder} in {time.perf_counter() - start:.0f} s")
    return 0


def _convert(args: argparse.Namespace) -> int:
    out = writable_file("--out", args.out)  # before the long conversion
    source = load_caffe(args.prototxt, args.caffemodel)
    with torch.device("meta"):
        target = load_model(args.to, weights="random")
    state = convert_to(source, target)
    check_state_dict_fits(target, state, str(args.caffemodel))  # every key fits, before writing
    save_state_dict(state, out)  # atomically: a failed write keeps an existing file
    print(f"wrote {out}: {len(state)} tensors for {args.to}")
    return 0


def _run(args: argparse.Namespace) -> int:
    writable_folder("--out", args.out)  # before any run
    runs = plan_runs(args.notebooks, args.parameters or [], args.files or [], args.grids or [])
    failures = run_notebooks(runs, Path(args.out))
    return 1 if failures else 0


def _outputs(args: argparse.Namespace) -> int:
    for notebook in select_notebooks(args.notebooks):
        if args.text_only:
            describe_in_place(notebook)
        else:
            execute_in_place(notebook)
        print(f"refreshed {notebook.name}")
    return 0


def _student(args: argparse.Namespace) -> int:
    out = writable_folder("--out", args.out)
    course = writable_folder("--course", args.course)
    for path in release(select_notebooks(args.notebooks), out, course):
        print(f"wrote {path}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    submissions = Path(args.submissions)
    if not submissions.is_dir():
        raise ConvscopeError(
            f"submissions {args.submissions!r} is not a folder of <student>/<lesson>.ipynb"
        )
    out = writable_folder("--out", args.out)
    course = writable_folder("--course", args.course)
    results = grade(submissions, select_notebooks(args.notebooks), course, out)
    for result in results:
        failed = f"; failed {', '.join(result.failed)}" if result.failed else ""
        print(f"{result.student} {result.lesson}: {result.score:g} of {result.points:g}{failed}")
    print(f"wrote {out / 'scores.csv'} and {out / 'feedback'}")
    return 0


def _slides(args: argparse.Namespace) -> int:
    out = writable_folder("--out", args.out)
    for path in write_decks(select_notebooks(args.notebooks), out):
        print(f"wrote {path}")
    return 0


def _hub(args: argparse.Namespace) -> int:
    folder = writable_folder("--folder", args.folder)
    folder.chmod(0o700)  # its database holds the hub's secrets
    proxy = Path(args.proxy) if args.proxy else install_proxy(folder / "proxy")
    if not (proxy.is_file() and os.access(proxy, os.X_OK)):
        raise ConvscopeError(f"--proxy {args.proxy!r} is not an executable file")
    config = write_hub_config(folder, args.port, proxy, args.accounts, args.group)
    print(f"JupyterHub on port {args.port} ({args.accounts} accounts), settings in {config}")
    sys.stdout.flush()
    extra = args.jupyterhub[1:] if args.jupyterhub[:1] == ["--"] else args.jupyterhub
    os.execv(HUB_COMMAND, [HUB_COMMAND, "-f", str(config), *extra])
    return 0  # not reached: the hub replaces this process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convscope")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model whose weights ship in data/")
    train.add_argument("model", choices=TRAINABLE)
    train.add_argument(
        "--epochs",
        type=_at_least_one,
        help="digits (default 60) and digits-permuted (default 80)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--out", help="digits: the weights file; digit-fcn: a folder (default: data/)"
    )
    train.set_defaults(handler=_train)
    convert = commands.add_parser(
        "convert", help="convert a Caffe model into a checkpoint for a convscope architecture"
    )
    convert.add_argument("prototxt")
    convert.add_argument("caffemodel")
    convert.add_argument("--to", required=True, help="caffenet, fcn8s, ... (load_model names)")
    convert.add_argument("--out", required=True, help="the .pth file to write")
    convert.set_defaults(handler=_convert)
    run = commands.add_parser("run", help="execute notebooks headlessly with papermill")
    run.add_argument("notebooks", nargs="*", help="notebook numbers or names (default: all)")
    run.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="override a parameter (repeatable)",
    )
    run.add_argument(
        "-f",
        "--file",
        dest="files",
        action="append",
        metavar="PARAMS.yaml",
        help="a YAML file of name: value overrides (repeatable)",
    )
    run.add_argument(
        "--grid",
        dest="grids",
        action="append",
        metavar="NAME=V1,V2",
        help="one run per value (repeatable: every combination)",
    )
    run.add_argument("--out", default="build", help="output folder (default: build)")
    run.set_defaults(handler=_run)
    outputs = commands.add_parser(
        "outputs", help="re-execute the committed notebooks in place (after editing them)"
    )
    outputs.add_argument("notebooks", nargs="*", help="notebook numbers or names (default: all)")
    outputs.add_argument(
        "--text-only",
        action="store_true",
        help="after editing only markdown: set the slide types and the figures' alt text "
        "again, without re-executing",
    )
    outputs.set_defaults(handler=_outputs)
    student = commands.add_parser(
        "student",
        help="write students' copies of the notebooks (nbgrader's release): each exercise's "
        "solution a stub, its hidden checks removed",
    )
    student.add_argument("notebooks", nargs="*", help="notebook numbers or names (default: all)")
    student.add_argument("--out", default="build/student", help="default: build/student")
    student.add_argument("--course", default="build/course", help="nbgrader's course folder")
    student.set_defaults(handler=_student)
    graded = commands.add_parser(
        "grade",
        help="autograde a folder of submitted notebooks (<student>/<lesson>.ipynb) with every "
        "check, hidden ones included: a score table and each student's feedback",
    )
    graded.add_argument("submissions", help="the folder of <student>/<lesson>.ipynb")
    graded.add_argument("notebooks", nargs="*", help="the lessons graded (default: all)")
    graded.add_argument("--out", default="build/grades", help="default: build/grades")
    graded.add_argument("--course", default="build/course", help="nbgrader's course folder")
    graded.set_defaults(handler=_grade)
    slides = commands.add_parser(
        "slides", help="write a reveal.js deck of each executed notebook that opens offline"
    )
    slides.add_argument("notebooks", nargs="*", help="notebook numbers or names (default: all)")
    slides.add_argument("--out", default="build/slides", help="default: build/slides")
    slides.set_defaults(handler=_slides)
    hub = commands.add_parser(
        "hub", help="start a JupyterHub for a class on this machine (see the README's recipe)"
    )
    hub.add_argument("--folder", default="build/hub", help="its files (default: build/hub)")
    hub.add_argument("--port", type=_port, default=8000, help="default: 8000")
    hub.add_argument(
        "--accounts",
        choices=ACCOUNTS,
        default="system",
        help="system: students' accounts on this machine (run as root); "
        "rehearsal: any name, no isolation, for trying the server out",
    )
    hub.add_argument(
        "--group",
        default="students",
        help="system accounts: members of this group may log in (default: students)",
    )
    hub.add_argument("--proxy", help="configurable-http-proxy (default: installed by npm)")
    hub.add_argument(
        "jupyterhub",
        nargs=argparse.REMAINDER,
        help="after --: JupyterHub's own options, e.g. --JupyterHub.ssl_cert=...",
    )
    hub.set_defaults(handler=_hub)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ConvscopeError, yaml.YAMLError, OSError) as error:
        if args.debug:
            raise
        # one line, as argparse reports a bad argument; exit 2 for bad input, as it does
        detail = " ".join(str(error).split())
        print(f"convscope: error: {detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
