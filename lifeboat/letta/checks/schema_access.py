"""Whether the Letta server can reach and write its schema: search_path, ownership, shadowing.

Letta creates and queries its tables unqualified, so it depends on the session's search_path:
init.sql sets it at the database level (``ALTER DATABASE … SET search_path``), which a plain
``pg_dump``/``pg_restore`` into a new database does not carry. Its tables must belong to the
role that owns the schema (a restore run as a superuser with ``--no-owner`` leaves tables the
server cannot write), and no object of Letta's names may sit earlier on the search_path than
Letta's schema (the server would read and write that one instead).
"""

from __future__ import annotations

from collections.abc import Iterator

from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check
from lifeboat.letta.schema_shape import expected_shape

_SEARCH_PATH_SETTINGS_SQL = """
SELECT s.setdatabase <> 0 AS for_database, s.setrole <> 0 AS for_role, substr(cfg, length('search_path=') + 1)
FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) AS cfg
WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))
  AND s.setrole IN (0, (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s))
  AND cfg LIKE 'search_path=%%'
"""

_SCHEMA_OWNER_SQL = "SELECT pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace WHERE nspname = %s"

# Tables, sequences, views and stand-alone types of the schema (extension members excluded).
_OWNERS_SQL = """
SELECT kind, name, pg_get_userbyid(owner) FROM (
  SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' ELSE 'table' END,
         c.relname, c.relowner, c.oid, 'pg_class'::regclass
  FROM pg_catalog.pg_class c
  WHERE c.relnamespace = %(schema)s::text::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
  UNION ALL
  SELECT 'type', t.typname, t.typowner, t.oid, 'pg_type'::regclass
  FROM pg_catalog.pg_type t
  WHERE t.typnamespace = %(schema)s::text::regnamespace AND t.typtype IN ('e', 'd', 'c', 'r', 'm')
    AND (t.typrelid = 0 OR (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c')
) AS o(kind, name, owner, oid, catalog)
WHERE owner <> (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = %(schema)s::text)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = o.catalog AND d.objid = o.oid AND d.deptype = 'e')
ORDER BY kind, name
"""

# Relations and types of the given names in the given schemas.
_SHADOWS_SQL = """
SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relname = ANY(%(names)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
UNION
SELECT n.nspname, t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = ANY(%(schemas)s) AND t.typname = ANY(%(types)s)
ORDER BY 1, 2
"""


@check(
    "schema_access",
    "Letta's role reaches its schema (search_path), owns its objects, and nothing shadows them",
    codes=(
        "schema.search_path",
        "schema.database_search_path",
        "schema.owner",
        "schema.privileges",
        "schema.shadowed",
    ),
)
def check_schema_access(ctx: CheckContext) -> Iterator[Finding]:
    owner = str(ctx.scalar(_SCHEMA_OWNER_SQL, (ctx.schema,)))
    path = _effective_search_path(ctx, owner)
    yield from _search_path_findings(ctx, owner, path)
    yield from _owner_findings(ctx, owner)
    yield from _privilege_findings(ctx, owner)
    yield from _shadow_findings(ctx, path)


def _settings(ctx: CheckContext, role: str) -> dict[tuple[bool, bool], str]:
    return {(bool(db), bool(rl)): value for db, rl, value in ctx.rows(_SEARCH_PATH_SETTINGS_SQL, (role,))}


def _entries(value: str) -> list[str]:
    return [entry for entry in (part.strip().strip('"') for part in value.split(",")) if entry]


def _effective_setting(ctx: CheckContext, role: str) -> str:
    """The search_path value a new session of ``role`` gets: db+role setting > role > database >
    built-in default (``"$user", public``)."""
    settings = _settings(ctx, role)
    for key in ((True, True), (False, True), (True, False)):
        if key in settings:
            return settings[key]
    return str(ctx.scalar("SELECT boot_val FROM pg_catalog.pg_settings WHERE name = 'search_path'"))


def _effective_search_path(ctx: CheckContext, role: str) -> list[str]:
    return [role if entry == "$user" else entry for entry in _entries(_effective_setting(ctx, role))]


def _search_path_findings(ctx: CheckContext, owner: str, path: list[str]) -> Iterator[Finding]:
    if ctx.schema not in path:
        yield Finding(
            severity=Severity.ERROR,
            check="schema.search_path",
            table="-",
            ids=[ctx.schema],
            count=1,
            message=f"Letta's tables live in schema {ctx.schema!r} but a new session of its owner {owner!r} "
            f"gets search_path {', '.join(path) or '(empty)'}: the server would see no tables",
            fix=f'ALTER DATABASE "<db>" SET search_path TO "{ctx.schema}" (pg_dump without --create drops this setting)',
        )
        return
    if ctx.schema not in _entries(_effective_setting(ctx, owner)):  # reached only through "$user"
        yield Finding(
            severity=Severity.ERROR,
            check="schema.database_search_path",
            table="-",
            ids=[ctx.schema],
            count=1,
            message=f"no search_path setting names schema {ctx.schema!r} (init.sql's ALTER DATABASE … SET "
            "search_path is lost, as after a plain pg_dump/pg_restore into a new database): only "
            f'"$user" finds Letta\'s tables, i.e. only a role that happens to be named {ctx.schema!r}; '
            "any other role the server is configured with sees none",
            fix=f'ALTER DATABASE "<db>" SET search_path TO "{ctx.schema}"',
        )


def _owner_findings(ctx: CheckContext, owner: str) -> Iterator[Finding]:
    rows = ctx.rows(_OWNERS_SQL, {"schema": ctx.schema})  # type: ignore[arg-type]
    if not rows:
        return
    others = sorted({row[2] for row in rows})
    yield Finding(
        severity=Severity.ERROR,
        check="schema.owner",
        table="-",
        ids=[f"{kind} {name}" for kind, name, _ in rows][:100],
        count=len(rows),
        related=others,
        message=f"{len(rows)} object(s) of schema {ctx.schema!r} are not owned by its owner {owner!r} "
        f"(owned by {', '.join(others)}): the server cannot write or migrate them",
        fix=f'ALTER TABLE/SEQUENCE/TYPE … OWNER TO "{owner}" for each (a restore as superuser with --no-owner does this)',
    )


_PRIVILEGES_SQL = """
SELECT 'schema ' || %(schema)s::text WHERE NOT has_schema_privilege(%(schema)s::text, 'USAGE, CREATE')
UNION ALL
SELECT 'table ' || c.relname FROM pg_catalog.pg_class c
WHERE c.relnamespace = %(schema)s::text::regnamespace AND c.relkind IN ('r', 'p')
  AND NOT has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE')
ORDER BY 1
"""


def _privilege_findings(ctx: CheckContext, owner: str) -> Iterator[Finding]:
    """Run with Letta's settings, verify connects as the server's role: can that role work here?"""
    user, superuser = ctx.rows(
        "SELECT current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
    )[0]
    if superuser or user == owner:
        return
    rows = [row[0] for row in ctx.rows(_PRIVILEGES_SQL, {"schema": ctx.schema})]  # type: ignore[arg-type]
    if rows:
        yield Finding(
            severity=Severity.ERROR,
            check="schema.privileges",
            table="-",
            ids=rows[:100],
            count=len(rows),
            related=[user],
            message=f"role {user!r} (the one verify connected as: Letta's settings) lacks the rights Letta needs on "
            f"{len(rows)} object(s) of schema {ctx.schema!r} owned by {owner!r}: the server cannot read or write them",
            fix=f'ALTER SCHEMA … OWNER TO "{user}" and the same for every table and sequence, or connect Letta as {owner!r}',
        )


def _shadow_findings(ctx: CheckContext, path: list[str]) -> Iterator[Finding]:
    """Objects of Letta's names in schemas searched before Letta's (pg_catalog aside)."""
    earlier = path[: path.index(ctx.schema)] if ctx.schema in path else []
    earlier = [schema for schema in earlier if schema != ctx.schema]
    if not earlier:
        return
    recorded = expected_shape(ctx.revision)
    names = sorted(
        set(ctx.columns)
        | set(recorded.tables if recorded else ())
        | set(recorded.sequences if recorded else ())
    )
    types = sorted(recorded.details.enums) if recorded and recorded.details else []
    rows = ctx.rows(_SHADOWS_SQL, {"schemas": earlier, "names": names, "types": types})  # type: ignore[arg-type]
    if rows:
        yield Finding(
            severity=Severity.ERROR,
            check="schema.shadowed",
            table="-",
            ids=[f"{schema}.{name}" for schema, name in rows][:100],
            count=len(rows),
            message=f"{len(rows)} object(s) named like Letta's sit in schema(s) searched before {ctx.schema!r}: "
            "the server would read and write those instead of its own",
            fix="drop or rename the shadowing objects (or move their schema after Letta's in the search_path)",
        )
