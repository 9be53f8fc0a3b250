"""PostgreSQL, knowing nothing of Letta: snapshots, schema capture/apply, COPY streams, sequences.

Backup::

    with SharedSnapshot(dsn) as snap:
        with snap.connection() as conn:
            schema = capture_schema(conn)
        snap.map(lambda conn, table: store(copy_out(conn, table.qualified, table.copy_columns)),
                 schema.tables_biggest_first(), jobs=2)

Restore (into a new database ``db``)::

    apply_database_settings(admin_conn, schema, db)
    apply_pre_data(target_admin_conn, schema)
    def load(conn, part):                                   # a big table comes in several parts
        chunks = part.slice(blobs_of(part.table))            # contiguous, line-aligned blobs
        copy_in(conn, part.table.qualified, columns, chunks, freeze=part.whole)
    load_and_apply_post_data(target_dsn, schema, load, jobs=2)  # loads, indexes, keys, FKs, ANALYZE
    apply_sequence_values(target_conn, schema)

or, phase by phase: copy_in per table (run_on_connections), apply_post_data, analyze.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from lifeboat.lazy import lazy_exports

if TYPE_CHECKING:
    from lifeboat.pg.admin import (
        Session,
        create_database,
        database_exists,
        drop_database,
        list_sessions,
        rename_database,
        set_allow_connections,
        swap_databases,
        temporary_database_name,
        temporary_name_prefix,
        terminate_backends,
    )
    from lifeboat.pg.apply import (
        ApplyReport,
        TablePart,
        analyze,
        apply_database_settings,
        apply_post_data,
        apply_pre_data,
        apply_sequence_values,
        check_target_version,
        load_and_apply_post_data,
        parts_per_table,
        pause_autovacuum,
        resume_autovacuum,
    )
    from lifeboat.pg.capture import UnsupportedSchema, capture_schema, find_unsupported_objects
    from lifeboat.pg.connect import (
        ServerInfo,
        connect,
        connection,
        database_errors,
        describe_target,
        existing_roles,
        prints_utc_iso,
        role_exists,
        server_info,
        with_database,
    )
    from lifeboat.pg.copystream import CopyBatch, KeyRange, copy_in, copy_out, keys_come_in_runs
    from lifeboat.pg.ddl import Statement, check_schema, load_key, post_data_statements, pre_data_statements
    from lifeboat.pg.fragments import UnsafeFragment
    from lifeboat.pg.models import DatabaseSchema, QualifiedName, TableDef
    from lifeboat.pg.parallel import run_on_connections, run_statements
    from lifeboat.pg.snapshot import SharedSnapshot


class _Package(types.ModuleType):
    """``lifeboat.pg.connect`` is the function although a submodule has that name: when the
    submodule is imported (on the first ``pg.connect`` or by anyone), the import system binds it on
    the package, and the function is bound instead. So importing lifeboat.pg loads no psycopg."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "connect" and isinstance(value, types.ModuleType):
            value = value.connect
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

# Each public name and the module defining it: imported on first use (PEP 562), so a command
# needing only the models or a connection does not load the SQL parser at start-up.
_EXPORTS = {
    "ApplyReport": "lifeboat.pg.apply",
    "CopyBatch": "lifeboat.pg.copystream",
    "DatabaseSchema": "lifeboat.pg.models",
    "KeyRange": "lifeboat.pg.copystream",
    "QualifiedName": "lifeboat.pg.models",
    "ServerInfo": "lifeboat.pg.connect",
    "Session": "lifeboat.pg.admin",
    "SharedSnapshot": "lifeboat.pg.snapshot",
    "Statement": "lifeboat.pg.ddl",
    "TableDef": "lifeboat.pg.models",
    "TablePart": "lifeboat.pg.apply",
    "UnsafeFragment": "lifeboat.pg.fragments",
    "UnsupportedSchema": "lifeboat.pg.capture",
    "analyze": "lifeboat.pg.apply",
    "apply_database_settings": "lifeboat.pg.apply",
    "apply_post_data": "lifeboat.pg.apply",
    "apply_pre_data": "lifeboat.pg.apply",
    "apply_sequence_values": "lifeboat.pg.apply",
    "capture_schema": "lifeboat.pg.capture",
    "check_schema": "lifeboat.pg.ddl",
    "check_target_version": "lifeboat.pg.apply",
    "connect": "lifeboat.pg.connect",
    "connection": "lifeboat.pg.connect",
    "copy_in": "lifeboat.pg.copystream",
    "copy_out": "lifeboat.pg.copystream",
    "keys_come_in_runs": "lifeboat.pg.copystream",
    "create_database": "lifeboat.pg.admin",
    "database_errors": "lifeboat.pg.connect",
    "database_exists": "lifeboat.pg.admin",
    "describe_target": "lifeboat.pg.connect",
    "drop_database": "lifeboat.pg.admin",
    "existing_roles": "lifeboat.pg.connect",
    "find_unsupported_objects": "lifeboat.pg.capture",
    "list_sessions": "lifeboat.pg.admin",
    "load_and_apply_post_data": "lifeboat.pg.apply",
    "load_key": "lifeboat.pg.ddl",
    "parts_per_table": "lifeboat.pg.apply",
    "pause_autovacuum": "lifeboat.pg.apply",
    "prints_utc_iso": "lifeboat.pg.connect",
    "post_data_statements": "lifeboat.pg.ddl",
    "pre_data_statements": "lifeboat.pg.ddl",
    "rename_database": "lifeboat.pg.admin",
    "resume_autovacuum": "lifeboat.pg.apply",
    "role_exists": "lifeboat.pg.connect",
    "run_on_connections": "lifeboat.pg.parallel",
    "run_statements": "lifeboat.pg.parallel",
    "server_info": "lifeboat.pg.connect",
    "set_allow_connections": "lifeboat.pg.admin",
    "swap_databases": "lifeboat.pg.admin",
    "temporary_database_name": "lifeboat.pg.admin",
    "temporary_name_prefix": "lifeboat.pg.admin",
    "terminate_backends": "lifeboat.pg.admin",
    "with_database": "lifeboat.pg.connect",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "ApplyReport",
    "CopyBatch",
    "DatabaseSchema",
    "KeyRange",
    "QualifiedName",
    "ServerInfo",
    "Session",
    "SharedSnapshot",
    "Statement",
    "TableDef",
    "TablePart",
    "UnsafeFragment",
    "UnsupportedSchema",
    "analyze",
    "apply_database_settings",
    "apply_post_data",
    "apply_pre_data",
    "apply_sequence_values",
    "capture_schema",
    "check_schema",
    "check_target_version",
    "connect",
    "connection",
    "copy_in",
    "copy_out",
    "create_database",
    "database_errors",
    "database_exists",
    "describe_target",
    "drop_database",
    "existing_roles",
    "find_unsupported_objects",
    "keys_come_in_runs",
    "list_sessions",
    "load_and_apply_post_data",
    "load_key",
    "parts_per_table",
    "pause_autovacuum",
    "post_data_statements",
    "pre_data_statements",
    "prints_utc_iso",
    "rename_database",
    "resume_autovacuum",
    "role_exists",
    "run_on_connections",
    "run_statements",
    "server_info",
    "set_allow_connections",
    "swap_databases",
    "temporary_database_name",
    "temporary_name_prefix",
    "terminate_backends",
    "with_database",
]
