"""Id formats (docs/LETTA.md §2): ``<prefix>-<uuid4>`` per table.

Letta's pydantic schemas accept ``<prefix>-<8 hex>…`` (loose) but its REST path validators
demand ``<prefix>-<lowercase uuid4>`` (strict): a loose-but-not-strict id is stored fine yet the
row cannot be addressed through the API, hence a warning; an id without its prefix is an error.
"""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from lifeboat.letta import ids
from lifeboat.letta.checks.base import MAX_IDS, CheckContext, Finding, Severity, check

# One pass per table; each id is classified once (strict first: almost every id is), in a
# materialized CTE so the aggregates below do not re-evaluate the predicates per aggregate.
_ID_SCAN = """
WITH shapes AS MATERIALIZED (
  SELECT id, CASE WHEN {strict} THEN 0 WHEN {loose} THEN 1 ELSE 2 END AS shape FROM {table}
)
SELECT count(*) FILTER (WHERE shape = 2), count(*) FILTER (WHERE shape = 1),
       (array_agg(id ORDER BY id) FILTER (WHERE shape = 2))[1:{limit}],
       (array_agg(id ORDER BY id) FILTER (WHERE shape = 1))[1:{limit}]
FROM shapes WHERE shape > 0
"""


@check("ids", "Id formats per table", codes=("ids.malformed", "ids.not_strict"))
def check_id_formats(ctx: CheckContext) -> Iterator[Finding]:
    for table in sorted(ctx.columns):
        prefix = ids.table_prefix(table)
        if prefix is None or not ctx.has(table, "id"):
            continue
        prefixes = (prefix, *ids.ID_OTHER_PREFIXES.get(table, ()))
        query = sql.SQL(_ID_SCAN).format(
            loose=sql.SQL(" OR ".join(ids.pg_predicate(p, "id") for p in prefixes)),
            strict=sql.SQL(" OR ".join(ids.pg_predicate(p, "id", strict=True) for p in prefixes)),
            limit=sql.Literal(MAX_IDS),
            table=sql.Identifier(table),
        )
        malformed, not_strict, malformed_ids, not_strict_ids = ctx.rows(query)[0]
        if malformed:
            yield Finding(
                severity=Severity.ERROR,
                check="ids.malformed",
                table=table,
                ids=list(malformed_ids),
                count=malformed,
                message=f"{malformed} {table} id(s) do not have the form {prefix}-<hex>: Letta's schemas reject them",
                fix="these rows were not written by Letta; restore them from a backup or delete them",
            )
        if not_strict:
            yield Finding(
                severity=Severity.WARNING,
                check="ids.not_strict",
                table=table,
                ids=list(not_strict_ids),
                count=not_strict,
                message=f"{not_strict} {table} id(s) are not {prefix}-<lowercase uuid4>: "
                "the REST API's path validators will refuse to address them",
                fix="recreate the rows through the API (export/import) to get canonical ids",
            )
