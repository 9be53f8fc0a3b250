"""Declared foreign keys, validated against the data.

A data-only restore with triggers disabled (``session_replication_role = replica``), or one whose
post-data step never ran, can leave rows that violate — or are no longer protected by — the
schema's foreign keys. We check the union of the constraints present in the database and those
recorded for the revision, with one anti-join per constraint (MATCH SIMPLE: a row with any NULL
key column is not checked, as PostgreSQL does).
"""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, row_findings
from lifeboat.letta.schema_shape import expected_shape
from lifeboat.pg.catalog import ForeignKey, foreign_keys

# Composite keys whose extra columns are a denormalized copy with a dedicated, clearer check: the
# FK check only tests that the referenced row exists. (blocks_agents' (block_id, block_label) →
# block(id, label): a wrong label is reported as blocks_agents.label_mismatch.)
NARROWED: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {
    ("blocks_agents", ("block_id", "block_label")): ("block_id",),
}


def narrowed(fk: ForeignKey) -> ForeignKey:
    keep = NARROWED.get((fk.table, fk.columns))
    if keep is None:
        return fk
    pairs = [(c, r) for c, r in zip(fk.columns, fk.ref_columns, strict=True) if c in keep]
    return ForeignKey(
        fk.name,
        fk.table,
        tuple(c for c, _ in pairs),
        fk.ref_table,
        tuple(r for _, r in pairs),
        fk.on_delete,
        fk.deferrable,
    )


def foreign_keys_to_check(ctx: CheckContext) -> list[ForeignKey]:
    """Constraints in the database plus recorded ones it lacks, deduplicated by definition."""
    seen: set[tuple[str, tuple[str, ...], str, tuple[str, ...]]] = set()
    result: list[ForeignKey] = []
    expected = expected_shape(ctx.revision)
    recorded = expected.foreign_keys if expected is not None else ()
    for fk in (*foreign_keys(ctx.conn, ctx.schema), *recorded):
        signature = (fk.table, fk.columns, fk.ref_table, fk.ref_columns)
        if (
            signature in seen
            or not ctx.has(fk.table, *fk.columns)
            or not ctx.has(fk.ref_table, *fk.ref_columns)
        ):
            continue
        seen.add(signature)
        result.append(fk)
    return sorted(result, key=lambda fk: (fk.table, fk.columns))


def violation_query(ctx: CheckContext, fk: ForeignKey) -> sql.Composed:
    child, parent = sql.Identifier("c"), sql.Identifier("p")
    not_null = sql.SQL(" AND ").join(
        sql.SQL("{}.{} IS NOT NULL").format(child, sql.Identifier(column)) for column in fk.columns
    )
    matches = sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}.{}").format(parent, sql.Identifier(ref), child, sql.Identifier(col))
        for col, ref in zip(fk.columns, fk.ref_columns, strict=True)
    )
    missing_key = sql.SQL("concat_ws('/', {})").format(
        sql.SQL(", ").join(sql.SQL("{}.{}::text").format(child, sql.Identifier(c)) for c in fk.columns)
    )
    return sql.SQL(
        "SELECT {label} AS id, {missing} AS related FROM {child_table} AS c "
        "WHERE {not_null} AND NOT EXISTS (SELECT 1 FROM {parent_table} AS p WHERE {matches})"
    ).format(
        label=ctx.row_label(fk.table, "c"),
        missing=missing_key,
        child_table=sql.Identifier(fk.table),
        not_null=not_null,
        parent_table=sql.Identifier(fk.ref_table),
        matches=matches,
    )


@check("fk", "Declared foreign keys hold", codes=("fk.violation",))
def check_foreign_keys(ctx: CheckContext) -> Iterator[Finding]:
    for fk in map(narrowed, foreign_keys_to_check(ctx)):
        columns = ", ".join(fk.columns)
        yield from row_findings(
            ctx,
            Severity.ERROR,
            "fk.violation",
            fk.table,
            violation_query(ctx, fk),
            f"{{count}} {fk.table} row(s) reference a missing {fk.ref_table} through ({columns}) [{fk.name}]",
            f"restore the missing {fk.ref_table} rows, or delete the dangling {fk.table} rows "
            "(a data-only load with triggers off lets these in)",
        )
