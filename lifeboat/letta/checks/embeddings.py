"""Embedding vectors (docs/LETTA.md §3): vector(4096), zero-padded beyond the model's dimension.

One sequential scan per passage table computes every per-row flag at once (this is the bulk of
a Letta database, so it must not be scanned once per rule). The padding test runs in SQL with
pgvector's ``subvector``/``vector_norm``; pgvector older than 0.7 lacks ``subvector``, and then
the tail is read through a ``real[]`` cast instead (slower, same answer).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from psycopg import sql

from lifeboat.letta.agent_config import EMBEDDING_TABLES, MAX_EMBEDDING_DIM
from lifeboat.letta.checks.base import MAX_IDS, CheckContext, Finding, Severity, check
from lifeboat.letta.checks.config import bad_embedding_config

# The table each passage table's rows belong to, whose embedding_config names the expected model.
_OWNER = {"archival_passages": ("archives", "archive_id"), "source_passages": ("sources", "source_id")}


@dataclass(frozen=True)
class Flag:
    code: str
    severity: Severity
    predicate: str  # over the scan's columns: p (the passage), dim, dims, owner_model
    message: str
    fix: str


def _padding_predicate(has_subvector: bool) -> str:
    tail = (
        "vector_norm(subvector(p.embedding, dim + 1, dims - dim)) > 0"
        if has_subvector
        else "EXISTS (SELECT 1 FROM unnest((p.embedding::real[])[dim + 1:dims]) AS x WHERE x <> 0)"
    )
    return f"CASE WHEN p.embedding IS NOT NULL AND dim BETWEEN 1 AND dims - 1 THEN {tail} ELSE false END"


def _flags(table: str, has_subvector: bool) -> list[Flag]:
    return [
        Flag(
            "embeddings.dimension",
            Severity.ERROR,
            f"p.embedding IS NOT NULL AND dims <> {MAX_EMBEDDING_DIM}",
            f"{{count}} {table} embedding(s) do not have {MAX_EMBEDDING_DIM} dimensions",
            "re-embed the passages (the column must be vector(4096))",
        ),
        Flag(
            "embeddings.padding",
            Severity.ERROR,
            _padding_predicate(has_subvector),
            f"{{count}} {table} embedding(s) have non-zero values beyond their model's embedding_dim: "
            "similarity search compares them wrongly",
            "re-embed the passages with the model named in their embedding_config",
        ),
        Flag(
            "embeddings.zero",
            Severity.WARNING,
            "p.embedding IS NOT NULL AND vector_norm(p.embedding) = 0",
            f"{{count}} {table} embedding(s) are all zeros: they never match a search",
            "re-embed the passages",
        ),
        Flag(
            "embeddings.missing",
            Severity.WARNING,
            "p.embedding IS NULL",
            f"{{count}} {table} row(s) have no embedding: invisible to similarity search",
            "re-embed the passages (or check the folder/archive's vector_db_provider)",
        ),
        Flag(
            "config.embedding_config",
            Severity.ERROR,
            bad_embedding_config("p.embedding_config"),
            f"{{count}} {table} row(s) have an embedding_config without embedding_model and an "
            f"embedding_dim in 1..{MAX_EMBEDDING_DIM}",
            "restore the rows' embedding_config from a backup",
        ),
        Flag(
            "embeddings.model_mismatch",
            Severity.WARNING,
            "owner_model IS NOT NULL AND p.embedding_config->>'embedding_model' IS DISTINCT FROM owner_model",
            f"{{count}} {table} row(s) were embedded with another model than their {_OWNER[table][0]}'s",
            "re-embed these passages with the owner's model (mixed models make similarity scores meaningless)",
        ),
    ]


def has_subvector(ctx: CheckContext) -> bool:
    return bool(ctx.scalar("SELECT to_regprocedure('subvector(vector, integer, integer)') IS NOT NULL"))


def scan_query(table: str, flags: list[Flag], dims_known: bool) -> sql.Composed:
    """One pass over ``table``: per-row flags computed once (materialized), then aggregated.

    ``dims_known``: the column is ``vector(4096)``, whose type modifier already guarantees the
    dimension, so the per-row ``vector_dims`` (a full detoast of 16 KB) is skipped.
    """
    owner_table, owner_key = _OWNER[table]
    dims = sql.SQL(str(MAX_EMBEDDING_DIM) if dims_known else "vector_dims(p.embedding)")
    flag_columns = sql.SQL(", ").join(
        sql.SQL("coalesce({}, false) AS {}").format(sql.SQL(flag.predicate), sql.Identifier(f"f{i}"))
        for i, flag in enumerate(flags)
    )
    aggregates = sql.SQL(", ").join(
        sql.SQL(
            "count(*) FILTER (WHERE {f}), (array_agg(id ORDER BY id) FILTER (WHERE {f}))[1:{limit}]"
        ).format(f=sql.Identifier(f"f{i}"), limit=sql.Literal(MAX_IDS))
        for i in range(len(flags))
    )
    any_flag = sql.SQL(" OR ").join(sql.Identifier(f"f{i}") for i in range(len(flags)))
    return sql.SQL(
        """
        WITH flagged AS MATERIALIZED (
          SELECT p.id, {flag_columns} FROM (
            SELECT p.*, CASE WHEN p.embedding IS NULL THEN NULL ELSE {dims} END AS dims,
                   CASE WHEN json_typeof(p.embedding_config->'embedding_dim') = 'number'
                        THEN (p.embedding_config->>'embedding_dim')::numeric::int END AS dim,
                   o.embedding_config->>'embedding_model' AS owner_model
            FROM {table} p LEFT JOIN {owner} o ON o.id = p.{owner_key}
          ) AS p
        )
        SELECT {aggregates} FROM flagged WHERE {any_flag}
        """
    ).format(
        flag_columns=flag_columns,
        dims=dims,
        table=sql.Identifier(table),
        owner=sql.Identifier(owner_table),
        owner_key=sql.Identifier(owner_key),
        aggregates=aggregates,
        any_flag=any_flag,
    )


@check(
    "embeddings",
    "Passage vectors: 4096 dimensions, zero padding beyond the model's dimension",
    needs=EMBEDDING_TABLES,
    codes=(
        "embeddings.dimension",
        "embeddings.padding",
        "embeddings.zero",
        "embeddings.missing",
        "embeddings.model_mismatch",
        "config.embedding_config",
    ),
)
def check_embeddings(ctx: CheckContext) -> Iterator[Finding]:
    subvector = has_subvector(ctx)
    for table in EMBEDDING_TABLES:
        owner_table, owner_key = _OWNER[table]
        if not ctx.has(table, "id", "embedding", "embedding_config", owner_key) or not ctx.has(
            owner_table, "embedding_config"
        ):
            continue
        flags = _flags(table, subvector)
        dims_known = ctx.columns[table]["embedding"] == f"vector({MAX_EMBEDDING_DIM})"
        values = ctx.rows(scan_query(table, flags, dims_known))[0]
        for index, flag in enumerate(flags):
            count, ids = values[2 * index], values[2 * index + 1]
            if count:
                yield Finding(
                    severity=flag.severity,
                    check=flag.code,
                    table=table,
                    ids=list(ids),
                    count=count,
                    message=flag.message.format(count=count),
                    fix=flag.fix,
                )
