"""The printable table: aligned columns, numbers formatted once, parts that keep the header."""

from __future__ import annotations

import pytest

from convscope.core.tables import Table


def table() -> Table:
    return Table(["layer", "MACs", "P"], [("conv1", 641_668_608, 0.5), ("fc", 800, None)])


def test_a_table_prints_aligned_with_its_numbers_formatted():
    assert str(table()).split("\n") == [
        "layer  MACs         P",
        "-----  -----------  ---",
        "conv1  641,668,608  0.5",
        "fc     800          -",
    ]


def test_parts_of_a_table_keep_its_header_and_cover_it_once():
    whole = Table(["n"], [(i,) for i in range(7)], decimals=2)
    first, second = whole[:3], whole[3:]
    assert first.column("n") + second.column("n") == whole.column("n")
    assert str(second).split("\n")[:2] == ["n", "-"]
    assert (len(first), len(second), second.decimals) == (3, 4, 2)
    assert whole.head(3).rows == first.rows
    with pytest.raises(TypeError, match="rows: a slice"):
        whole[2]
