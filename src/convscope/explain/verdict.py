"""Which picture to trust: each method's localisation beside its sanity checks, in one table,
with the published numbers beside them."""

from __future__ import annotations

from convscope.core.tables import Table
from convscope.explain.pointing import TORCHRAY_POINTING
from convscope.explain.sanity import SanityCurves


def trust_table(cascading: SanityCurves, independent: SanityCurves, pointing: Table) -> Table:
    """A row per method of the sanity checks: its pointing accuracy and 95% interval here (from
    `localisation_table`; blank where it was not scored), TorchRay's VOC07 VGG16 accuracy
    (`TORCHRAY_POINTING`, blank where TorchRay has none), then the rank correlation of its
    maps with the trained net's after the top stage alone is random, after every stage is,
    with only the bottom stage random, and the largest share of vanished maps (a blank:
    not measured). The methods `pointing` scored without checking, then its baselines,
    follow."""
    scored = {row[0]: row for row in pointing.rows}
    top, bottom = cascading.states[1], independent.states[-1]
    rows = []
    for m, method in enumerate(cascading.methods):
        found = scored.get(method)
        rows.append(
            (
                method,
                found[1] if found else None,
                found[2] if found else None,
                TORCHRAY_POINTING.get(method),
                round(cascading.rank_correlation[1, m].item(), 2),
                round(cascading.rank_correlation[-1, m].item(), 2),
                round(independent.rank_correlation[-1, m].item(), 2),
                round(cascading.vanished[1:, m].max().item(), 2),
            )
        )
    for name, row in scored.items():  # methods scored but not checked, then the baselines
        if name not in cascading.methods:
            rows.append((name, row[1], row[2], TORCHRAY_POINTING.get(name), None, None, None, None))
    columns = [
        "method",
        "pointing",
        "95% interval",
        "TorchRay VOC07 %",
        f"{top} random",
        "all random",
        f"only {bottom}",
        "vanished",
    ]
    return Table(columns, rows, 2)
