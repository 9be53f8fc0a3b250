"""Schema-level checks: the revision stamp, and the schema compared with the record of that revision.

The record (:mod:`lifeboat.letta.schema_shape`) is looked up by the database's own
``alembic_version``, so a record added for another release is used as soon as it exists.
Missing *and* extra objects are reported; a stamp that disagrees with the schema present (the
schema is exactly another recorded revision) is one error instead of a list of differences.
"""

from __future__ import annotations

from collections.abc import Iterator

from lifeboat.letta import revisions
from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, finding
from lifeboat.letta.schema_compare import Difference, compare_shapes, matching_revisions
from lifeboat.letta.schema_shape import SchemaShape, capture_shape, expected_shape
from lifeboat.pg.catalog import ForeignKey, foreign_keys

_MESSAGE_SEQUENCE = "message_seq_id"  # its absence and its default are the sequence check's business

# (aspect, change) -> (code, severity, message suffix, fix)
_RULES: dict[tuple[str, str], tuple[str, Severity, str, str]] = {
    ("table", "missing"): (
        "schema.missing_table",
        Severity.ERROR,
        "table(s) of the revision are missing",
        "restore the schema (pre-data DDL) of a database at this revision",
    ),
    ("table", "extra"): (
        "schema.extra_table",
        Severity.WARNING,
        "table(s) Letta does not define live in its schema (a later migration creating them would fail)",
        "move or drop them if they are not yours on purpose",
    ),
    ("column", "missing"): (
        "schema.missing_column",
        Severity.ERROR,
        "column(s) of the revision are missing",
        "the schema is not at the recorded revision; restore its DDL or re-run the migrations",
    ),
    ("column", "extra"): (
        "schema.extra_column",
        Severity.WARNING,
        "column(s) Letta does not define",
        "drop them if they are not yours on purpose (a NOT NULL one without default breaks inserts)",
    ),
    ("type", "different"): (
        "schema.column_type",
        Severity.ERROR,
        "column type(s) differ from the revision's",
        "restore the table's DDL from a database at this revision",
    ),
    ("not_null", "different"): (
        "schema.column_not_null",
        Severity.ERROR,
        "column(s) differ in NOT NULL from the revision",
        "ALTER TABLE … ALTER COLUMN … SET/DROP NOT NULL as the revision has it",
    ),
    ("default", "missing"): (
        "schema.column_default",
        Severity.ERROR,
        "column default(s) differ from the revision's",
        "ALTER TABLE … ALTER COLUMN … SET DEFAULT as the revision has it (inserts relying on it fail)",
    ),
    ("constraint", "missing"): (
        "schema.missing_constraint",
        Severity.ERROR,
        "primary key / unique / check constraint(s) of the revision are missing (post-data not applied)",
        "re-apply the post-data DDL of the backup; duplicates that crept in must be removed first",
    ),
    ("constraint", "different"): (
        "schema.constraint_differs",
        Severity.ERROR,
        "constraint(s) are defined differently from the revision (e.g. ON DELETE lost)",
        "drop and re-create them as the revision defines them",
    ),
    ("constraint", "extra"): (
        "schema.extra_constraint",
        Severity.WARNING,
        "constraint(s) Letta does not define (writes Letta expects to succeed may be refused)",
        "drop them if they are not yours on purpose",
    ),
    ("index", "missing"): (
        "schema.missing_index",
        Severity.WARNING,
        "index(es) of the revision are missing: queries get slow",
        "re-create them from the revision's definition (CREATE INDEX …)",
    ),
    ("index", "different"): (
        "schema.index_differs",
        Severity.WARNING,
        "index(es) are defined differently from the revision",
        "drop and re-create them as the revision defines them",
    ),
    ("index", "extra"): (
        "schema.extra_index",
        Severity.WARNING,
        "index(es) Letta does not define (a later migration creating one of the name would fail)",
        "drop them if they are not yours on purpose",
    ),
    ("sequence", "different"): (
        "schema.sequence_differs",
        Severity.WARNING,
        "sequence(s) are defined differently from the revision",
        "ALTER SEQUENCE to the revision's definition",
    ),
    ("sequence", "extra"): (
        "schema.extra_sequence",
        Severity.WARNING,
        "sequence(s) Letta does not define",
        "drop them if they are not yours on purpose",
    ),
    ("enum", "missing"): (
        "schema.enum_labels",
        Severity.ERROR,
        "enum type(s) are missing or have other labels than the revision's (inserts of a missing label fail)",
        "re-create the type (or ALTER TYPE … ADD VALUE) as the revision defines it",
    ),
    ("enum", "extra"): (
        "schema.extra_type",
        Severity.WARNING,
        "enum type(s) Letta does not define",
        "drop them if they are not yours on purpose",
    ),
}
_RULES[("default", "different")] = _RULES[("default", "extra")] = _RULES[("default", "missing")]
_RULES[("enum", "different")] = _RULES[("enum", "missing")]
_UNIQUE_INDEX_RULE = (
    "schema.missing_unique_index",
    Severity.ERROR,
    "unique index(es) of the revision are missing: duplicates are no longer refused",
    "re-create them from the revision's definition (CREATE UNIQUE INDEX …) after removing duplicates",
)
_CODES = sorted({rule[0] for rule in _RULES.values()} | {_UNIQUE_INDEX_RULE[0]})


@check(
    "schema",
    "Schema revision; tables, columns, defaults, constraints, indexes, sequences and types as recorded",
    codes=(
        "schema.revision_missing",
        "schema.revision_unknown",
        "schema.revision_other",
        "schema.revision_mismatch",
        "schema.vector_extension",
        "schema.missing_foreign_key",
        *_CODES,
    ),
)
def check_schema(ctx: CheckContext) -> Iterator[Finding]:
    yield from _revision_findings(ctx)
    if ctx.notes.get("vector_schema") is None:
        yield finding(
            Severity.ERROR,
            "schema.vector_extension",
            "-",
            "the pgvector extension is not installed: the embedding columns cannot exist or be read",
            "CREATE EXTENSION vector WITH SCHEMA <letta schema> (as a superuser) before loading data",
        )
    if ctx.revision is None or not revisions.is_known(ctx.revision):
        return
    actual = actual_shape(ctx)
    expected = expected_shape(ctx.revision)
    differences = compare_shapes(expected, actual) if expected is not None else []
    if expected is None or differences:
        matches = matching_revisions(actual)
        if matches and ctx.revision not in matches:
            yield _mismatch(ctx.revision, matches[0])
            return
    if expected is None:
        yield finding(
            Severity.INFO,
            "schema.revision_other",
            "alembic_version",
            f"alembic revision {ctx.revision} = Letta {revisions.release_label(ctx.revision)}; lifeboat holds "
            "no schema record for it, so the schema comparison was skipped",
        )
        return
    yield from _difference_findings(ctx, differences)
    yield from _foreign_key_findings(ctx, expected.foreign_keys)


def _revision_findings(ctx: CheckContext) -> Iterator[Finding]:
    if "alembic_version" not in ctx.columns:
        yield finding(
            Severity.ERROR,
            "schema.revision_missing",
            "alembic_version",
            "no alembic_version table: the schema was not created by Letta's migrations "
            "(Letta's startup `alembic upgrade head` would try to replay everything and fail)",
            "restore the schema from a migrated database, or `alembic stamp <revision>` if it is known to match",
        )
        return
    rows = ctx.rows("SELECT version_num FROM alembic_version ORDER BY 1")
    if len(rows) != 1:
        yield finding(
            Severity.ERROR,
            "schema.revision_missing",
            "alembic_version",
            f"alembic_version holds {len(rows)} rows (expected exactly 1): {[r[0] for r in rows]}",
            "keep the single row of the revision the schema was migrated to",
        )
        return
    if not revisions.is_known(rows[0][0]):
        yield finding(
            Severity.ERROR,
            "schema.revision_unknown",
            "alembic_version",
            f"alembic revision {rows[0][0]} is not the head of any Letta release lifeboat knows",
            "upgrade lifeboat, or migrate the database to a released Letta revision",
        )


def _mismatch(stamped: str, present: str) -> Finding:
    return Finding(
        severity=Severity.ERROR,
        check="schema.revision_mismatch",
        table="alembic_version",
        ids=[stamped],
        count=1,
        related=[present],
        message=f"alembic_version says {stamped} (Letta {revisions.release_label(stamped)}) but the schema "
        f"present is exactly revision {present} (Letta {revisions.release_label(present)}): the server's "
        "startup migration would replay or skip migrations against the wrong schema",
        fix=f"UPDATE alembic_version SET version_num = '{present}' (alembic stamp), after making sure of it",
    )


def _difference_findings(ctx: CheckContext, differences: list[Difference]) -> Iterator[Finding]:
    grouped: dict[tuple[str, str], list[Difference]] = {}
    for difference in differences:
        if not _reported_here(difference):
            continue
        rule = _rule(difference)
        grouped.setdefault((rule[0], difference.table), []).append(difference)
    for (_code, table), found in sorted(grouped.items()):
        code, severity, what, fix = _rule(found[0])
        described = "; ".join(_describe(d) for d in found[:10])
        table_label = "-" if found[0].aspect == "table" else table
        yield Finding(
            severity=severity,
            check=code,
            table=table_label,
            ids=[d.name for d in found],
            count=len(found),
            message=f"{len(found)} {what}: {described} (revision {ctx.revision})",
            fix=fix,
        )


def _reported_here(difference: Difference) -> bool:
    """Differences other checks report (so one defect gives one finding)."""
    if difference.aspect == "constraint" and difference.change == "missing":
        return not (difference.expected or "").startswith("f ")  # missing_foreign_key (by definition)
    if difference.aspect == "sequence" and difference.change == "missing":
        return difference.name != _MESSAGE_SEQUENCE  # sequence.missing
    if difference.aspect == "default":
        return _MESSAGE_SEQUENCE not in f"{difference.expected}{difference.actual}"  # sequence.missing
    return True


def _rule(difference: Difference) -> tuple[str, Severity, str, str]:
    if (
        difference.aspect == "index"
        and difference.change == "missing"
        and " UNIQUE " in f" {difference.expected}"
    ):
        return _UNIQUE_INDEX_RULE
    return _RULES[(difference.aspect, difference.change)]


def _describe(difference: Difference) -> str:
    where = "" if difference.table == "-" or difference.aspect == "table" else f"{difference.table}."
    name = f"{where}{difference.name}"
    if difference.change == "missing":
        return f"{name} (expected {difference.expected})" if difference.expected else name
    if difference.change == "extra":
        return f"{name} ({difference.actual})" if difference.actual else name
    return f"{name}: {difference.actual} (expected {difference.expected})"


def _fk_signature(fk: ForeignKey) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
    return (fk.table, fk.columns, fk.ref_table, fk.ref_columns)


def _foreign_key_findings(ctx: CheckContext, expected: tuple[ForeignKey, ...]) -> Iterator[Finding]:
    present = {_fk_signature(fk) for fk in foreign_keys(ctx.conn, ctx.schema)}
    missing = [fk for fk in expected if _fk_signature(fk) not in present and fk.table in ctx.columns]
    by_table: dict[str, list[ForeignKey]] = {}
    for fk in missing:
        by_table.setdefault(fk.table, []).append(fk)
    for table, fks in sorted(by_table.items()):
        described = [f"({', '.join(fk.columns)}) → {fk.ref_table}" for fk in fks]
        yield Finding(
            severity=Severity.ERROR,
            check="schema.missing_foreign_key",
            table=table,
            ids=[fk.name for fk in fks],
            count=len(fks),
            message=f"{table} lacks foreign key(s) {'; '.join(described)}: nothing stops dangling references",
            fix="re-apply the post-data DDL (constraints) of the backup; the fk check tells whether data violates them",
        )


def actual_shape(ctx: CheckContext) -> SchemaShape:
    """The shape of the verified schema (captured once per context)."""
    shape = ctx.notes.get("shape")
    if shape is None:
        shape = ctx.notes["shape"] = capture_shape(ctx.conn, ctx.schema)
    assert isinstance(shape, SchemaShape)
    return shape
