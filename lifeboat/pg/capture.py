"""Schema capture straight from the system catalogs (no pg_dump: it may be missing or refuse
the server's major).

Runs with ``search_path = pg_catalog`` so that ``format_type``, ``pg_get_expr``,
``pg_get_constraintdef`` and ``pg_get_indexdef`` print schema-qualified names. Object kinds
lifeboat cannot recreate are refused with one error listing all of them: a backup that
silently drops a trigger or a view is worse than no backup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.errors import DatabaseError
from lifeboat.pg import catalog
from lifeboat.pg.connect import database_errors
from lifeboat.pg.models import (
    ColumnDef,
    ConstraintDef,
    DatabaseInfo,
    DatabaseSchema,
    DatabaseSetting,
    EnumDef,
    ExtensionDef,
    Grant,
    IndexDef,
    QualifiedName,
    SchemaDef,
    SequenceDef,
    SequenceOwner,
    TableDef,
)


class UnsupportedSchema(DatabaseError):
    """The database holds objects lifeboat cannot back up faithfully."""

    def __init__(self, objects: list[str]) -> None:
        self.objects = objects
        listing = "; ".join(objects[:20]) + (f"; ... ({len(objects) - 20} more)" if len(objects) > 20 else "")
        super().__init__(f"the database contains objects lifeboat cannot back up: {listing}")


# A schema lifeboat captures: not a system one, not created by an extension.
_USER_NAMESPACE = """
    n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
"""


def _not_extension_member(catalog: str, alias: str) -> str:
    return f"""NOT EXISTS (SELECT 1 FROM pg_depend member WHERE member.classid = '{catalog}'::regclass
                     AND member.objid = {alias}.oid AND member.deptype = 'e')"""


def capture_schema(conn: psycopg.Connection, *, allow_unsupported: bool = False) -> DatabaseSchema:
    """Capture the structure of the connected database (and its sequences' current values).

    Run it inside the backup's shared snapshot so the catalog reads match the copied data.
    Raises :class:`UnsupportedSchema` listing every object kind it cannot recreate, unless
    ``allow_unsupported`` (then they become ``warnings``).
    """
    with database_errors("schema capture"):
        previous_path = _scalar(conn, "SELECT current_setting('search_path')")
        conn.execute(
            "SELECT set_config('search_path', 'pg_catalog', %s)", (conn.info.transaction_status != 0,)
        )
        try:
            return _capture(conn, allow_unsupported)
        finally:
            if conn.info.transaction_status in (
                psycopg.pq.TransactionStatus.IDLE,
                psycopg.pq.TransactionStatus.INTRANS,
            ):
                conn.execute("SELECT set_config('search_path', %s, false)", (previous_path,))


def _capture(conn: psycopg.Connection, allow_unsupported: bool) -> DatabaseSchema:
    unsupported = find_unsupported_objects(conn)
    if unsupported and not allow_unsupported:
        raise UnsupportedSchema(unsupported)
    tables = _tables(conn)
    return DatabaseSchema(
        server_version_num=int(_scalar(conn, "SELECT current_setting('server_version_num')")),
        database=_database(conn),
        settings=_settings(conn),
        schemas=_schemas(conn),
        extensions=_extensions(conn),
        enums=_enums(conn),
        sequences=_sequences(conn),
        tables=tables,
        warnings=[f"not captured: {item}" for item in unsupported] + _extension_config_warnings(conn),
    )


def _scalar(conn: psycopg.Connection, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _grants(acl: dict[str, Any] | None) -> list[Grant] | None:
    """An explicit ACL as grants, leaving out the owner's entries when they are the default.

    The owner's default differs between majors (PostgreSQL 17 added MAINTAIN); replaying the
    source's list verbatim would take MAINTAIN away from the owner on a newer target.
    """
    if acl is None:
        return None
    grants = [
        Grant(grantee=grantee, privilege=privilege, grantable=grantable)
        for grantee, privilege, grantable in acl["grants"]
    ]
    owner = acl["owner"]
    owner_privileges = sorted(g.privilege for g in grants if g.grantee == owner and not g.grantable)
    owner_entries = [g for g in grants if g.grantee == owner]
    if owner_privileges == sorted(acl["owner_default"] or []) and len(owner_entries) == len(owner_privileges):
        grants = [g for g in grants if g.grantee != owner]
    return grants


def _acl_sql(column: str, kind: str, owner_column: str) -> str:
    """JSON of an ACL column: its entries, the owner, and the owner's default privileges."""
    return f"""CASE WHEN {column} IS NULL THEN NULL ELSE json_build_object(
        'grants', (SELECT coalesce(json_agg(json_build_array(
                       CASE WHEN acl_entry.grantee = 0 THEN NULL ELSE pg_get_userbyid(acl_entry.grantee) END,
                       acl_entry.privilege_type, acl_entry.is_grantable)
                   ORDER BY acl_entry.grantee = 0, pg_get_userbyid(acl_entry.grantee), acl_entry.privilege_type), '[]'::json)
                   FROM aclexplode({column}) acl_entry),
        'owner', pg_get_userbyid({owner_column}),
        'owner_default', (SELECT json_agg(acl_default.privilege_type ORDER BY acl_default.privilege_type)
                          FROM aclexplode(acldefault('{kind}', {owner_column})) acl_default
                          WHERE acl_default.grantee = {owner_column})) END"""


def _database(conn: psycopg.Connection) -> DatabaseInfo:
    row = conn.execute(
        f"""
        SELECT d.datname, pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
               shobj_description(d.oid, 'pg_database'), {_acl_sql("d.datacl", "d", "d.datdba")}
        FROM pg_database d WHERE d.datname = current_database()
        """
    ).fetchone()
    assert row is not None
    return DatabaseInfo(
        name=row[0], owner=row[1], encoding=row[2], collate=row[3], ctype=row[4], comment=row[5],
        grants=_grants(row[6]),
    )  # fmt: skip


def _settings(conn: psycopg.Connection) -> list[DatabaseSetting]:
    rows = conn.execute(
        """
        SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END, c.setting
        FROM pg_db_role_setting s
        JOIN pg_database d ON d.oid = s.setdatabase AND d.datname = current_database()
        CROSS JOIN LATERAL unnest(s.setconfig) WITH ORDINALITY c(setting, position)
        ORDER BY 1 NULLS FIRST, c.position
        """
    ).fetchall()
    settings = []
    for role, setting in rows:
        name, _, value = setting.partition("=")
        settings.append(DatabaseSetting(role=role, name=name, value=value))
    return settings


def _schemas(conn: psycopg.Connection) -> list[SchemaDef]:
    rows = conn.execute(
        f"""
        SELECT n.nspname, pg_get_userbyid(n.nspowner), obj_description(n.oid, 'pg_namespace'),
               {_acl_sql("n.nspacl", "n", "n.nspowner")}
        FROM pg_namespace n WHERE {_USER_NAMESPACE} ORDER BY n.nspname
        """
    ).fetchall()
    return [SchemaDef(name=r[0], owner=r[1], comment=r[2], grants=_grants(r[3])) for r in rows]


def _extensions(conn: psycopg.Connection) -> list[ExtensionDef]:
    """Installed extensions, each after the extensions it requires."""
    rows = conn.execute(
        """
        SELECT x.extname, n.nspname, x.extversion,
               ARRAY(SELECT r.extname FROM pg_depend d JOIN pg_extension r ON r.oid = d.refobjid
                     WHERE d.classid = 'pg_extension'::regclass AND d.objid = x.oid
                       AND d.refclassid = 'pg_extension'::regclass)
        FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace ORDER BY x.extname
        """
    ).fetchall()
    requires = {r[0]: set(r[3]) for r in rows}
    ordered: list[str] = []
    while len(ordered) < len(rows):
        ready = sorted(
            name for name, needs in requires.items() if name not in ordered and needs <= set(ordered)
        )
        ordered += ready or sorted(set(requires) - set(ordered))  # a cycle cannot happen; never loop forever
    by_name = {r[0]: ExtensionDef(name=r[0], schema=r[1], version=r[2]) for r in rows}
    return [by_name[name] for name in ordered]


def _extension_config_warnings(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        """
        SELECT x.extname, c.oid::regclass::text FROM pg_extension x
        CROSS JOIN LATERAL unnest(x.extconfig) cfg(oid) JOIN pg_class c ON c.oid = cfg.oid
        ORDER BY 1, 2
        """
    ).fetchall()
    return [f"extension {ext} configuration table {table} is not backed up" for ext, table in rows]


def _enums(conn: psycopg.Connection) -> list[EnumDef]:
    rows = conn.execute(
        f"""
        SELECT n.nspname, t.typname, pg_get_userbyid(t.typowner),
               ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
               obj_description(t.oid, 'pg_type')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'e' AND {_USER_NAMESPACE} AND {_not_extension_member("pg_type", "t")}
        ORDER BY n.nspname, t.typname
        """
    ).fetchall()
    return [EnumDef(schema=r[0], name=r[1], owner=r[2], labels=list(r[3]), comment=r[4]) for r in rows]


def _sequences(conn: psycopg.Connection) -> list[SequenceDef]:
    rows = conn.execute(
        f"""
        SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), format_type(s.seqtypid, NULL),
               s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
               c.relpersistence = 'u', obj_description(c.oid, 'pg_class'), {_acl_sql("c.relacl", "s", "c.relowner")},
               tn.nspname, t.relname, a.attname, d.deptype = 'i'
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_sequence s ON s.seqrelid = c.oid
        LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        LEFT JOIN pg_class t ON t.oid = d.refobjid
        LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
        LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE c.relkind = 'S' AND {_USER_NAMESPACE} AND {_not_extension_member("pg_class", "c")}
        ORDER BY n.nspname, c.relname
        """
    ).fetchall()
    sequences = []
    for r in rows:
        name = QualifiedName(schema=r[0], name=r[1])
        last_value, is_called = conn.execute(
            sql.SQL("SELECT last_value, is_called FROM {}").format(name.identifier())
        ).fetchone() or (r[4], False)
        owned_by = None
        if r[13] is not None:
            owned_by = SequenceOwner(
                table=QualifiedName(schema=r[13], name=r[14]), column=r[15], identity=r[16]
            )
        sequences.append(
            SequenceDef(
                schema=r[0], name=r[1], owner=r[2], data_type=r[3], start=r[4], increment=r[5],
                min_value=r[6], max_value=r[7], cache=r[8], cycle=r[9], unlogged=r[10], comment=r[11],
                grants=_grants(r[12]), last_value=last_value, is_called=is_called, owned_by=owned_by,
            )
        )  # fmt: skip
    return sequences


def _tables(conn: psycopg.Connection) -> list[TableDef]:
    rows = conn.execute(
        f"""
        SELECT c.oid, n.nspname, c.relname, pg_get_userbyid(c.relowner), c.relpersistence = 'u',
               coalesce(c.reloptions, '{{}}') || ARRAY(SELECT 'toast.' || o FROM unnest(t.reloptions) o),
               obj_description(c.oid, 'pg_class'), {_acl_sql("c.relacl", "r", "c.relowner")},
               c.reltuples, c.relpages, pg_total_relation_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.relkind = 'r' AND {_USER_NAMESPACE} AND {_not_extension_member("pg_class", "c")}
        ORDER BY n.nspname, c.relname
        """
    ).fetchall()
    per_schema = {schema: _table_parts(conn, schema) for schema in sorted({r[1] for r in rows})}
    return [
        TableDef(
            schema=r[1], name=r[2], owner=r[3], unlogged=r[4], options=list(r[5]), comment=r[6],
            grants=_grants(r[7]), estimated_rows=max(float(r[8]), 0.0), pages=r[9], total_bytes=r[10],
            **per_schema[r[1]](r[2]),
        )
        for r in rows
    ]  # fmt: skip


def _table_parts(conn: psycopg.Connection, schema: str) -> Callable[[str], dict[str, Any]]:
    """Columns, constraints and indexes of every table of ``schema`` (read once), by table name."""
    columns = catalog.columns(conn, schema)
    constraints = catalog.constraints(conn, schema)
    indexes = catalog.indexes(conn, schema)

    def parts(table: str) -> dict[str, Any]:
        return {
            "columns": [ColumnDef(**vars(column)) for column in columns.get(table, [])],
            "constraints": [_constraint(c) for c in constraints.get(table, [])],
            "indexes": [IndexDef(**vars(index)) for index in indexes.get(table, [])],
        }

    return parts


def _constraint(c: catalog.Constraint) -> ConstraintDef:
    references = None
    if c.ref_schema is not None and c.ref_table is not None:
        references = QualifiedName(schema=c.ref_schema, name=c.ref_table)
    return ConstraintDef(
        name=c.name, kind=c.kind, definition=c.definition, validated=c.validated, columns=list(c.columns),
        references=references, comment=c.comment, deferrable=c.deferrable, deferred=c.deferred,
        index_definition=c.index_definition,
    )  # fmt: skip


# ---- refusing what we cannot recreate ------------------------------------------------------


def _schema_object(
    kind: str, label: str, table: str, name: str, namespace: str, *, quote: bool = True
) -> tuple[str, str]:
    """The query listing objects of catalog ``table`` in user schemas as ``<label> schema.name``."""
    name_sql = f"quote_ident(o.{name})" if quote else f"o.{name}"
    return (
        kind,
        f"""SELECT '{label} ' || quote_ident(n.nspname) || '.' || {name_sql}
            FROM {table} o JOIN pg_namespace n ON n.oid = o.{namespace}
            WHERE {_USER_NAMESPACE} AND {_not_extension_member(table, "o")}""",
    )


_UNSUPPORTED_QUERIES: list[tuple[str, str]] = [
    (
        "relation",
        f"""SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                   WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table'
                   WHEN 'c' THEN 'composite type' ELSE 'relation kind ' || c.relkind::text END
                   || ' ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('v', 'm', 'f', 'p', 'c') AND {_USER_NAMESPACE}
              AND {_not_extension_member("pg_class", "c")}""",
    ),
    (
        "table feature",
        f"""SELECT feature || ' on table ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL (VALUES
                (CASE WHEN c.relispartition THEN 'partition' END),
                (CASE WHEN EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid)
                      THEN 'inheritance' END),
                (CASE WHEN c.reloftype <> 0 THEN 'typed table' END),
                (CASE WHEN c.relrowsecurity THEN 'row level security' END),
                (CASE WHEN c.reltablespace <> 0 THEN 'non-default tablespace' END),
                (CASE WHEN c.relam <> 0 AND c.relam <> (SELECT oid FROM pg_am WHERE amname = 'heap')
                      THEN 'table access method' END),
                (CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                                   AND a.attacl IS NOT NULL AND NOT a.attisdropped)
                      THEN 'column privileges' END)
            ) f(feature)
            WHERE f.feature IS NOT NULL AND c.relkind = 'r' AND {_USER_NAMESPACE}
              AND {_not_extension_member("pg_class", "c")}""",
    ),
    (
        "index tablespace",
        f"""SELECT 'index in a non-default tablespace ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'i' AND c.reltablespace <> 0 AND {_USER_NAMESPACE}""",
    ),
    (
        "type",
        f"""SELECT CASE t.typtype WHEN 'd' THEN 'domain' WHEN 'r' THEN 'range type' WHEN 'b' THEN 'base type'
                   WHEN 'p' THEN 'pseudo type' ELSE 'type kind ' || t.typtype::text END
                   || ' ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname)
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype IN ('d', 'r', 'b', 'p') AND {_USER_NAMESPACE}
              AND {_not_extension_member("pg_type", "t")}
              AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)""",
    ),
    (
        "function",
        f"""SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                   WHEN 'w' THEN 'window function' ELSE 'function' END
                   || ' ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname)
                   || '(' || pg_get_function_identity_arguments(p.oid) || ')'
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE {_USER_NAMESPACE} AND {_not_extension_member("pg_proc", "p")}""",
    ),
    (
        "trigger",
        f"""SELECT 'trigger ' || quote_ident(t.tgname) || ' on ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT t.tgisinternal AND {_USER_NAMESPACE} AND {_not_extension_member("pg_class", "c")}""",
    ),
    (
        "rule",
        f"""SELECT 'rule ' || quote_ident(r.rulename) || ' on ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
            FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE r.rulename <> '_RETURN' AND {_USER_NAMESPACE} AND {_not_extension_member("pg_class", "c")}""",
    ),
    (
        "policy",
        f"""SELECT 'policy ' || quote_ident(p.polname) || ' on ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
            FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE {_USER_NAMESPACE}""",
    ),
    _schema_object("statistics", "extended statistics", "pg_statistic_ext", "stxname", "stxnamespace"),
    _schema_object("operator", "operator", "pg_operator", "oprname", "oprnamespace", quote=False),
    _schema_object("operator class", "operator class", "pg_opclass", "opcname", "opcnamespace"),
    _schema_object("operator family", "operator family", "pg_opfamily", "opfname", "opfnamespace"),
    _schema_object("collation", "collation", "pg_collation", "collname", "collnamespace"),
    _schema_object("conversion", "conversion", "pg_conversion", "conname", "connamespace"),
    _schema_object(
        "text search configuration", "text search configuration", "pg_ts_config", "cfgname", "cfgnamespace"
    ),
    _schema_object(
        "text search dictionary", "text search dictionary", "pg_ts_dict", "dictname", "dictnamespace"
    ),
    (
        "cast",
        f"""SELECT 'cast (' || format_type(c.castsource, NULL) || ' AS ' || format_type(c.casttarget, NULL) || ')'
            FROM pg_cast c WHERE c.oid >= 16384 AND {_not_extension_member("pg_cast", "c")}""",
    ),
    (
        "event trigger",
        f"""SELECT 'event trigger ' || quote_ident(e.evtname) FROM pg_event_trigger e
            WHERE {_not_extension_member("pg_event_trigger", "e")}""",
    ),
    (
        "publication",
        "SELECT 'publication ' || quote_ident(p.pubname) FROM pg_publication p",
    ),
    (
        "foreign server",
        f"""SELECT 'foreign server ' || quote_ident(s.srvname) FROM pg_foreign_server s
            WHERE {_not_extension_member("pg_foreign_server", "s")}""",
    ),
    (
        "language",
        f"""SELECT 'procedural language ' || quote_ident(l.lanname) FROM pg_language l
            WHERE l.lanispl AND {_not_extension_member("pg_language", "l")}""",
    ),
    (
        "default privileges",
        """SELECT 'default privileges of role ' || quote_ident(pg_get_userbyid(d.defaclrole))
                  || coalesce(' in schema ' || quote_ident(n.nspname), '')
            FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace""",
    ),
    (
        "large objects",
        """SELECT count(*) || ' large object(s)' FROM pg_largeobject_metadata HAVING count(*) > 0""",
    ),
    (
        "type privileges",
        f"""SELECT 'privileges on type ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname)
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typacl IS NOT NULL AND {_USER_NAMESPACE} AND {_not_extension_member("pg_type", "t")}""",
    ),
]


def find_unsupported_objects(conn: psycopg.Connection) -> list[str]:
    """Every object in the connected database that :func:`capture_schema` cannot recreate."""
    found: list[str] = []
    for _kind, query in _UNSUPPORTED_QUERIES:
        found.extend(row[0] for row in conn.execute(query))
    return sorted(found)
