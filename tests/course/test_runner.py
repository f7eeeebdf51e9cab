"""Batch runs: planning and checking parameters, executing, the gallery."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from papermill.clientwrap import PapermillNotebookClient

from convscope.__main__ import main
from convscope.core.errors import ConvscopeError, UnknownNameError, WeightsNotFoundError
from convscope.course import headless as runner_headless
from convscope.course import runner
from convscope.course.headless import HeadlessClient
from convscope.course.parameters import check_run, coerce
from convscope.course.runner import (
    Run,
    execute_notebook,
    plan_runs,
    run_name,
    run_notebooks,
    select_notebooks,
)


def test_grids_make_every_combination_and_files_set_defaults(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("sigma: 2\nseed: 3\n")
    runs = plan_runs(
        ["01"], [("seed", "5")], [str(params)], ["new_bias=0.5,1.5", "photo=coffee,chelsea"]
    )
    assert len(runs) == 4
    assert runs[0].parameters == {"sigma": 2.0, "seed": 5, "new_bias": 0.5, "photo": "coffee"}
    assert {r.parameters["photo"] for r in runs} == {"coffee", "chelsea"}
    assert isinstance(runs[0].parameters["sigma"], float)  # coerced to the declared type


def test_parameters_are_checked_against_the_notebook(tmp_path):
    with pytest.raises(UnknownNameError, match="layer='conv9' is not valid.*'conv1', 'relu1'"):
        plan_runs(["02"], [("layer", "conv9")])
    with pytest.raises(UnknownNameError, match=r"channel=99 .*-1\.\.63"):
        plan_runs(["05"], [("layer", "conv3"), ("channel", "99")])
    with pytest.raises(UnknownNameError, match="'tiger'.*'0', '1'"):
        plan_runs(["06"], [("class_name", "tiger")])
    with pytest.raises(UnknownNameError, match="fcn4s.*fcn32s, fcn16s, fcn8s"):
        plan_runs(["04"], [], grids=["model=fcn8s,fcn4s"])
    with pytest.raises(ConvscopeError, match="takes an int"):
        plan_runs(["02"], [("image_index", "first")])
    with pytest.raises(ConvscopeError, match="name=v1,v2"):
        plan_runs(["02"], [], grids=["layer"])
    with pytest.raises(UnknownNameError, match="layer='conv1' is not valid.*'conv1_1'"):
        plan_runs(["02"], [("model", "vgg16"), ("weights", "random"), ("layer", "conv1")])
    with pytest.raises(UnknownNameError, match="zeroed_filter=96 .*0..95"):
        plan_runs(["02"], [("model", "caffenet"), ("weights", "random"), ("zeroed_filter", "96")])
    with pytest.raises(UnknownNameError, match="unknown model 'resnet'.*vgg16"):
        plan_runs(["01"], [("model", "resnet")])
    assert check_run(select_notebooks(["06"])[0], {"class_name": 7}) == {"class_name": "7"}
    assert coerce("x", 2, 0.5) == 2.0


def test_changing_only_the_model_passes_the_checks_of_every_notebook(tmp_path):
    """Model-dependent defaults follow the model: an empty `layer` means its suggested one."""
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"checked for existence only")
    for notebook in select_notebooks([]):
        for model in ("caffenet", "alexnet", "vgg16"):
            for chosen in ("random", str(weights)):
                plan_runs([notebook.stem], [("model", model), ("weights", chosen)])


def notebook_with(folder, source: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell(source)
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters]
    path = folder / "98_check.ipynb"
    nbformat.write(notebook, path)
    return path


def test_the_whole_parameter_set_is_checked_defaults_included(tmp_path):
    """A default that the override makes invalid is caught before anything runs."""
    path = notebook_with(
        tmp_path, 'model = "digits"\nweights = "random"\nlayer = "conv2"\nchannel = 5'
    )
    assert check_run(path, {}) == {}
    with pytest.raises(UnknownNameError, match="layer='conv2' is not valid in 98_check.*conv1_1"):
        check_run(path, {"model": "vgg16"})
    path = notebook_with(tmp_path, 'model = "digits"\nweights = "random"\nlayer = ""\nchannel = 70')
    with pytest.raises(UnknownNameError, match=r"channel=70 .*-1\.\.31"):
        check_run(path, {"layer": "conv1"})  # digits conv1 has 32 maps
    with pytest.raises(UnknownNameError, match=r"channel=70 .*-1\.\.63"):
        check_run(path, {})  # the suggested layer, conv2, has 64


@pytest.mark.parametrize(
    ("notebook", "name", "value", "message"),
    [
        ("01", "sigma", "0", r"sigma=0.0 .* > 0 and <= 10"),
        ("01", "sigma", ".nan", r"sigma=nan .* > 0"),
        ("06", "iterations", "-1", r"iterations=-1 .* >= 0 and <= 5000"),
        ("06", "iterations", "10000000", r"iterations=10000000 .*<= 5000"),
        ("06", "scene_count", "-1", r"scene_count=-1 .*>= 1"),
        ("06", "step", "0", r"step=0.0 .*> 0"),
        ("04", "height", "0", r"height=0 .*>= 1"),
        ("04", "upsample_factor", "100", r"upsample_factor=100 .*<= 16"),
        ("03", "digit_count", "0", r"digit_count=0 .*>= 1"),
        ("02", "ablated_filters", "33", r"ablated_filters=33 .*0\.\.32"),
        ("02", "image_index", "1000", r"image_index=1000 .*0\.\.999"),
        ("05", "seed", "-1", r"seed=-1 .*>= 0"),
        ("02", "weights", "no/such.pth", r"weights='no/such.pth': 'no/such.pth' is not a readable"),
        ("02", "weights", ".", r"weights='.': '.' is not a readable file"),
        ("05", "model", "caffe:no.prototxt", r"model='caffe:no.prototxt': 'no.prototxt' is not"),
        ("07", "method", "lrp", r"method='lrp' .*'gradient', 'deconvnet', 'guided_backprop'"),
        ("07", "layer", "classifier", r"layer='classifier' .*'stem', 'stem_bn', 'stem_relu'"),
        ("07", "sanity_images", "65", r"sanity_images=65 .*<= 64"),
        ("07", "tolerance", "-1", r"tolerance=-1 .*>= 0"),
        ("07", "pointing_scenes", "-1", r"pointing_scenes=-1 .*>= 0"),
        ("06", "photo_class", "espreso", r"photo_class='espreso' .*'tench', 'goldfish'"),
        ("06", "blur", "-1", r"blur=-1.0 .*>= 0"),
        ("06", "photo_iterations", "0", r"photo_iterations=0 .*>= 1"),
    ],
)
def test_values_are_checked_before_running(notebook, name, value, message):
    with pytest.raises(ConvscopeError, match=message):
        plan_runs([notebook], [(name, value)])


def test_missing_default_weights_fail_the_check_with_instructions(offline_hub):
    with pytest.raises(WeightsNotFoundError, match="bvlc_reference_caffenet.pth.*weights='random'"):
        plan_runs(["05"], [("model", "caffenet")])


def test_an_input_too_small_for_the_model_is_refused_up_front():
    too_small = r"height=100: input of 100x100 is too small .*199x199"
    with pytest.raises(ConvscopeError, match=too_small):
        plan_runs(["04"], [("model", "caffenet"), ("height", "100"), ("width", "100")])


def test_run_names_are_file_names():
    assert run_name({}) == "defaults"
    name = run_name({"model": "caffe:a/b.prototxt", "seed": 1})
    assert re.fullmatch(r"model=caffe_a_b\.prototxt-seed=1-[0-9a-f]{8}", name)
    # parameter sets that sanitise or cut alike still get names of their own
    assert run_name({"weights": "a b.pth"}) != run_name({"weights": "a_b.pth"})
    long = "caffe:" + "x" * 200
    assert run_name({"model": long + "1"}) != run_name({"model": long + "2"})


def failing_notebook(folder) -> Run:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    parameters = nbformat.v4.new_code_cell("value = 1")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell("raise ValueError(f'bad {value}')")]
    path = folder / "99_broken.ipynb"
    nbformat.write(notebook, path)
    return Run(path, {"value": 2})


def test_a_failing_run_is_reported_and_the_others_still_run(tmp_path):
    good = plan_runs(["01"], [("sigma", "1.5")])[0]
    failures = run_notebooks([failing_notebook(tmp_path), good], tmp_path / "build")
    assert len(failures) == 1
    # execution count 3: parameters, papermill's injected parameters, then the failing cell
    assert failures[0].startswith("99_broken: cell 3 raised ValueError: bad 2")
    out, name = tmp_path / "build", run_name({"sigma": 1.5})
    assert (out / f"runs/01_designer_filters/{name}.html").exists()
    assert (out / f"runs/01_designer_filters/{name}.png").read_bytes()[:4] == b"\x89PNG"
    records = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/*.json"))]
    assert [(r["notebook"], r["status"]) for r in records] == [
        ("01_designer_filters", "ok"),
        ("99_broken", "failed"),
    ]
    page = (out / "index.html").read_text()
    assert "2 runs, 1 failed" in page and "sigma=1.5" in page
    assert f'src="runs/01_designer_filters/{name}.png"' in page
    assert "bad 2" in page


def test_headless_engine_does_not_mirror_output_widgets(tmp_path, monkeypatch):
    """nbclient's mirroring of Output widgets can lose a cell's reply (jupyter/nbclient#312)."""
    manager = SimpleNamespace(nb=nbformat.v4.new_notebook())
    state = {
        "_model_module": "@jupyter-widgets/output",
        "_model_name": "OutputModel",
        "outputs": [],
    }
    opened = {"content": {"comm_id": "c1", "data": {"state": state}}}
    assert PapermillNotebookClient(manager).on_comm_open_jupyter_widget(opened) is not None
    assert HeadlessClient(manager).on_comm_open_jupyter_widget(opened) is None
    # and every run goes through it
    used = []
    monkeypatch.setattr(HeadlessClient, "execute", lambda self: used.append(self.timeout))
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, tmp_path / "empty.ipynb")
    execute_notebook(tmp_path / "empty.ipynb", tmp_path / "out.ipynb", {})
    assert used == [900]


def test_a_run_that_dies_leaves_no_half_notebook_and_no_stale_result(tmp_path, monkeypatch):
    out, run = tmp_path / "build", failing_notebook(tmp_path)
    folder, name = out / "runs" / "99_broken", run_name(run.parameters)
    folder.mkdir(parents=True)
    for suffix in (".ipynb", ".html", ".png"):  # an earlier run of the same name
        (folder / f"{name}{suffix}").write_text("from an earlier run")

    def dies(notebook, output, **options):
        with open(output, "w") as handle:
            handle.write('{"cells": [')  # papermill had begun writing
        raise RuntimeError("kernel died")

    monkeypatch.setattr(runner.papermill, "execute_notebook", dies)
    assert run_notebooks([run], out) == ["99_broken: RuntimeError: kernel died"]
    assert sorted(p.name for p in folder.iterdir()) == [f"{name}.json"]
    record = json.loads((folder / f"{name}.json").read_text())
    assert (record["status"], record["notebook_file"], record["html_file"]) == ("failed", "", None)
    assert "no notebook written" in (out / "index.html").read_text()


def test_a_repeated_grid_name_is_refused_and_the_same_run_is_planned_once():
    with pytest.raises(ConvscopeError, match="--grid sigma is given twice"):
        plan_runs(["01"], [], grids=["sigma=1,2", "sigma=3"])
    assert len(plan_runs(["01", "01"], [], grids=["sigma=1,1,2"])) == 2


def test_a_malformed_parameter_file_is_named(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("sigma: [1, 2\n")
    with pytest.raises(ConvscopeError, match=f"parameter file {broken} is not valid YAML"):
        plan_runs(["01"], [], [str(broken)])


def test_a_corrupt_old_record_is_skipped_and_the_gallery_still_written(tmp_path, capsys):
    out = tmp_path / "build"
    old = out / "runs" / "01_designer_filters" / "old.json"
    old.parent.mkdir(parents=True)
    old.write_text('{"notebook": "01_desi')
    assert run_notebooks([failing_notebook(tmp_path)], out) != []
    assert "skipped" in capsys.readouterr().out
    assert "1 runs, 1 failed" in (out / "index.html").read_text()


def test_the_command_line_prints_one_line_per_error_and_exits_2(tmp_path, capsys):
    assert main(["run", "01", "-p", "sigma", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("convscope: error: sigma=0.0 is not valid") and "\n" not in err
    assert "Traceback" not in err
    with pytest.raises(ConvscopeError):
        main(["--debug", "run", "01", "-p", "sigma", "0", "--out", str(tmp_path)])


def test_parameter_files_and_output_folders_are_named_when_unusable(tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    cases = [
        (["run", "01", "-f", str(tmp_path / "missing.yaml")], "-f file not found: "),
        (["run", "01", "-f", str(tmp_path)], "-f .* is a folder; give a file in it"),
        (["run", "01", "--out", str(tmp_path / "a_file")], "--out .*a_file is a file; give"),
        (["run", "01", "--out", "/proc/convscope"], "--out /proc/convscope: cannot write there"),
        (["student", "01", "--out", str(tmp_path / "a_file")], "--out .*a_file is a file"),
        (["convert", "a", "b", "--to", "caffenet", "--out", str(tmp_path)], "--out .* is a fold"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert re.match(rf"convscope: error: {message}", err) and "\n" not in err, err


def test_a_run_reports_each_code_cell_and_its_kernel_talks_over_ipc(tmp_path, monkeypatch, capfd):
    """Progress names each code cell as it starts (papermill's injected parameters cell too);
    the kernel listens on Unix sockets in the runtime folder, which are gone afterwards, and
    ipykernel has no unencrypted TCP port to warn about."""
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    run = failing_notebook(tmp_path)
    notebook = nbformat.read(run.notebook, as_version=4)
    notebook.cells[1].source = "\n\n# the cell that used to fail\nprint(value * 2)"
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell("words, not counted"))
    nbformat.write(notebook, run.notebook)
    lines = []
    transports = []
    original = runner_headless.IPCKernelManager.__init__

    def noting(self, **kwargs):
        original(self, **kwargs)
        transports.append(self.transport)

    monkeypatch.setattr(runner_headless.IPCKernelManager, "__init__", noting)
    executed = execute_notebook(run.notebook, tmp_path / "out.ipynb", run.parameters, lines.append)
    assert lines == [
        "cell 1 of 3: value = 1",
        "cell 2 of 3: # Parameters",
        "cell 3 of 3: # the cell that used to fail",
    ]
    assert nbformat.read(executed, as_version=4).cells[-1].outputs[0].text == "4\n"
    expected = "tcp" if os.name == "nt" else "ipc"
    assert transports == [expected]
    assert "without encryption" not in capfd.readouterr().err
    assert list(runtime.glob("*ipc*")) == []  # the sockets removed with the kernel


def tiny_notebook(tmp_path, source: str):
    """A folder `lessons` holding `tiny.ipynb`, one code cell of `source`; returns the folder."""
    folder = tmp_path / "lessons"
    folder.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(notebook, folder / "tiny.ipynb")
    return folder


def test_refreshing_a_notebook_in_its_folder_talks_to_its_kernel_over_ipc(tmp_path, monkeypatch):
    """`make outputs` starts the kernel in the notebook's folder while this process works
    elsewhere: the sockets' absolute paths must meet (a relative one did not), and none is
    left in the notebook's folder or the runtime folder."""
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    folder = tiny_notebook(tmp_path, "import os\nprint(os.path.basename(os.getcwd()))")
    runner_headless.execute_in_place(folder / "tiny.ipynb")
    refreshed = nbformat.read(folder / "tiny.ipynb", as_version=4)
    assert refreshed.cells[0].outputs[0].text == "lessons\n"  # it ran in its own folder
    assert sorted(p.name for p in folder.iterdir()) == ["tiny.ipynb"]
    assert list(runtime.glob("convscope-*")) == []


def test_a_runtime_folder_too_deep_for_a_socket_falls_back_to_a_private_temporary_one(
    tmp_path, monkeypatch
):
    deep = tmp_path / ("a_long_folder_name_" * 6)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(deep))
    prefix = runner_headless.socket_prefix()
    assert len(os.fsencode(prefix)) + 3 <= runner_headless.SOCKET_PATH_MAX
    assert (
        not prefix.startswith(str(deep)) and os.stat(os.path.dirname(prefix)).st_mode & 0o077 == 0
    )
    folder = tiny_notebook(tmp_path, "print(6 * 7)")
    runner_headless.execute_in_place(folder / "tiny.ipynb")  # the kernel is reached there
    assert nbformat.read(folder / "tiny.ipynb", as_version=4).cells[0].outputs[0].text == "42\n"
