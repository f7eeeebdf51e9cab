"""Records go to the file `$CONVSCOPE_RECORDS` names, and nowhere else."""

from __future__ import annotations

from convscope.core.records import RECORDS_VARIABLE, read_records, record, records_path


def test_records_append_to_the_named_file_and_read_back(tmp_path, monkeypatch, capsys):
    notebook = tmp_path / "05_run.ipynb"
    monkeypatch.setenv(RECORDS_VARIABLE, str(records_path(notebook)))
    record("mean_iou", 0.5)
    record("layer", "conv2")
    record("mean_iou", 0.75)  # the last value of a name wins
    assert records_path(notebook) == tmp_path / "05_run.records.jsonl"
    assert read_records(notebook) == {"mean_iou": 0.75, "layer": "conv2"}
    assert capsys.readouterr().out == ""  # nothing shows in the notebook


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(RECORDS_VARIABLE, raising=False)
    record("mean_iou", 0.5)
    assert list(tmp_path.iterdir()) == [] and capsys.readouterr().out == ""
    assert read_records(tmp_path / "never_run.ipynb") == {}
