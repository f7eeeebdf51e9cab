"""A small printable table, Caffe-style, for blob shapes, parameter shapes and results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Table:
    """Rows of values under named columns; prints as aligned plain text.

    Args:
        columns: the column headers.
        rows: one tuple per row, as many values as columns.
        decimals: print every float with this many decimals (None: 4 significant digits).
    """

    columns: Sequence[str]
    rows: list[tuple] = field(default_factory=list)
    decimals: int | None = None

    def column(self, name: str) -> list:
        """All values of one column, top to bottom."""
        index = list(self.columns).index(name)
        return [row[index] for row in self.rows]

    def head(self, count: int = 5) -> Table:
        """The first `count` rows, as a new table."""
        return Table(self.columns, self.rows[:count], self.decimals)

    def __getitem__(self, rows: slice) -> Table:
        """The rows `rows` selects (`table[:24]`, `table[24:]`), as a new table: a long table
        printed in parts, each part with its header."""
        if not isinstance(rows, slice):
            raise TypeError(f"rows: a slice such as table[:10], not {rows!r}; one row: .rows[i]")
        return Table(self.columns, self.rows[rows], self.decimals)

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        cells = [list(map(str, self.columns))] + [
            [_format(v, self.decimals) for v in row] for row in self.rows
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = [
            "  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip()
            for row in cells
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)

    __repr__ = __str__


def _format(value: object, decimals: int | None = None) -> str:
    if isinstance(value, float):
        return f"{value:.{decimals}f}" if decimals is not None else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    if isinstance(value, tuple):
        return str(value)
    if value is None:
        return "-"
    return str(value)
