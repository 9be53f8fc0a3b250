"""Database-level settings (``ALTER DATABASE ... SET``) and the database's comment and privileges.

List settings are re-quoted the way pg_dump does; settings that load code into every session or
change how a session lexes strings are refused, never applied.
"""

from __future__ import annotations

from psycopg import sql

from lifeboat.pg.ddl_ownership import comment_statements, privilege_statements
from lifeboat.pg.ddl_statement import Statement, roles
from lifeboat.pg.fragments import UnsafeFragment
from lifeboat.pg.models import DatabaseSchema, DatabaseSetting

# Settings whose value is a list of names, stored quoted (pg_dump's variable_is_guc_list_quote).
_LIST_SETTINGS = {
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
}
# Settings a restore never applies: they load code into every session, or change how a session
# lexes strings (so a fragment checked as one statement could mean something else there).
_REFUSED_SETTINGS = {
    "backslash_quote",
    "dynamic_library_path",
    "local_preload_libraries",
    "role",
    "session_authorization",
    "session_preload_libraries",
    "shared_preload_libraries",
    "standard_conforming_strings",
}


def split_list_setting(value: str) -> list[str]:
    """Split a stored list setting (``"$user", public``) into its elements, unquoted."""
    elements: list[str] = []
    current: list[str] = []
    in_quotes = False
    index = 0
    while index < len(value):
        char = value[index]
        if in_quotes:
            if char == '"' and value[index + 1 : index + 2] == '"':
                current.append('"')
                index += 1
            elif char == '"':
                in_quotes = False
            else:
                current.append(char)
        elif char == '"':
            in_quotes = True
        elif char == ",":
            elements.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    last = "".join(current).strip()
    if last or elements:
        elements.append(last)
    return elements


def _setting_name(name: str) -> sql.Composable:
    return sql.SQL(".").join(sql.Identifier(part) for part in name.split("."))


def setting_statement(database: str, setting: DatabaseSetting) -> Statement:
    if setting.name.lower() in _REFUSED_SETTINGS:
        raise UnsafeFragment(f"database setting {setting.name!r} refused (a restore never applies it)")
    if setting.name.lower() in _LIST_SETTINGS:
        values = [sql.Literal(element) for element in split_list_setting(setting.value)]
        value: sql.Composable = sql.SQL(", ").join(values) if values else sql.Literal("")
    else:
        value = sql.Literal(setting.value)
    if setting.role is None:
        target = sql.SQL("ALTER DATABASE {}").format(sql.Identifier(database))
    else:
        target = sql.SQL("ALTER ROLE {} IN DATABASE {}").format(
            sql.Identifier(setting.role), sql.Identifier(database)
        )
    statement = sql.SQL("{} SET {} TO {}").format(target, _setting_name(setting.name), value)
    return Statement(statement, roles=roles(setting.role))


def database_setting_statements(schema: DatabaseSchema, database: str) -> list[Statement]:
    """``ALTER DATABASE ... SET``, the database's comment and privileges (any connection)."""
    name = sql.Identifier(database)
    statements = [setting_statement(database, setting) for setting in schema.settings]
    statements += comment_statements("DATABASE", name, schema.database.comment)
    statements += privilege_statements("DATABASE", name, schema.database.owner, schema.database.grants)
    return statements
