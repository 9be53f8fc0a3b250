"""JSON configuration columns (docs/LETTA.md §3): structure, minimally.

The columns are ``json``, so PostgreSQL already guarantees they parse; what can still be wrong is
the shape Letta's pydantic models need when it loads the row (an object with a model and a
context window, an embedding dimension within the vector column, a list of typed tool rules).
"""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from lifeboat.letta.agent_config import MAX_EMBEDDING_DIM, TOOL_RULE_TYPES
from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, row_findings

# Tables whose embedding_config fixes the model of their own or their children's vectors.
EMBEDDING_CONFIG_OWNERS = ("agents", "sources", "archives")


def bad_llm_config(column: str = "llm_config") -> str:
    """SQL predicate: a non-NULL llm_config that is not an object with a model name and a numeric window."""
    return f"""(
      {column} IS NOT NULL AND json_typeof({column}) <> 'null' AND (
        json_typeof({column}) <> 'object'
        OR json_typeof({column}->'model') IS DISTINCT FROM 'string'
        OR json_typeof({column}->'context_window') IS DISTINCT FROM 'number'))"""


def bad_embedding_config(column: str = "embedding_config") -> str:
    """SQL predicate: a non-NULL embedding_config without a model and a dimension in 1..4096."""
    return f"""(
      {column} IS NOT NULL AND json_typeof({column}) <> 'null' AND (
        json_typeof({column}) <> 'object'
        OR json_typeof({column}->'embedding_model') IS DISTINCT FROM 'string'
        OR CASE WHEN json_typeof({column}->'embedding_dim') = 'number'
                THEN ({column}->>'embedding_dim')::numeric NOT BETWEEN 1 AND {MAX_EMBEDDING_DIM}
                ELSE true END))"""


@check(
    "config",
    "JSON config columns have the shape Letta loads",
    needs=("agents",),
    codes=("config.llm_config", "config.embedding_config", "config.tool_rules", "config.json_shape"),
)
def check_config(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.has("agents", "llm_config"):
        yield from row_findings(
            ctx,
            Severity.ERROR,
            "config.llm_config",
            "agents",
            f"SELECT a.id, left(a.llm_config::text, 80) AS related FROM agents a WHERE {bad_llm_config('a.llm_config')}",
            "{count} agent(s) have an llm_config that is not an object with model and context_window",
            "set the agent's model again through the API (PATCH /v1/agents/{id} with model)",
        )
    for table in EMBEDDING_CONFIG_OWNERS:
        if ctx.has(table, "embedding_config"):
            yield from row_findings(
                ctx,
                Severity.ERROR,
                "config.embedding_config",
                table,
                sql.SQL(
                    "SELECT t.id, left(t.embedding_config::text, 80) AS related FROM {} t WHERE "
                    + bad_embedding_config("t.embedding_config")
                ).format(sql.Identifier(table)),
                f"{{count}} {table} row(s) have an embedding_config without embedding_model and an "
                f"embedding_dim in 1..{MAX_EMBEDDING_DIM}",
                "restore the row's embedding_config from a backup (it fixes the model of its vectors)",
            )
    if ctx.has("agents", "tool_rules"):
        yield from row_findings(
            ctx,
            Severity.ERROR,
            "config.tool_rules",
            "agents",
            sql.SQL(
                """
                SELECT a.id, coalesce(r.value->>'type', json_typeof(r.value)) AS related
                FROM agents a, json_array_elements(a.tool_rules) r
                WHERE json_typeof(a.tool_rules) = 'array'
                  AND (json_typeof(r.value) <> 'object'
                       OR json_typeof(r.value->'tool_name') IS DISTINCT FROM 'string'
                       OR NOT (r.value->>'type' = ANY ({types})))
                UNION ALL
                SELECT a.id, json_typeof(a.tool_rules) FROM agents a
                WHERE json_typeof(a.tool_rules) NOT IN ('array', 'null')
                """
            ).format(types=sql.Literal(list(TOOL_RULE_TYPES))),
            "{count} agent(s) have tool_rules that are not a list of {{tool_name, type}} rules of a known type",
            "set the agent's tool rules again through the API",
        )
    yield from _object_columns(ctx)


# Columns Letta loads into pydantic objects: NULL or a JSON object.
_OBJECT_COLUMNS = (("agents", "response_format"), ("agents", "compaction_settings"), ("agents", "metadata_"))


def _object_columns(ctx: CheckContext) -> Iterator[Finding]:
    for table, column in _OBJECT_COLUMNS:
        if not ctx.has(table, column):
            continue
        yield from row_findings(
            ctx,
            Severity.ERROR,
            "config.json_shape",
            table,
            sql.SQL(
                "SELECT t.id, {label} AS related FROM {table} t "
                "WHERE t.{column} IS NOT NULL AND json_typeof(t.{column}) NOT IN ('object', 'null')"
            ).format(label=sql.Literal(column), table=sql.Identifier(table), column=sql.Identifier(column)),
            f"{{count}} {table} row(s) hold a {column} that is not a JSON object",
            f"set {column} to NULL or to the object Letta expects",
        )
