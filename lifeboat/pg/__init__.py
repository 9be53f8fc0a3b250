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
    role_exists,
    server_info,
    with_database,
)
from lifeboat.pg.copystream import CopyBatch, copy_in, copy_out
from lifeboat.pg.ddl import Statement, check_schema, load_key, post_data_statements, pre_data_statements
from lifeboat.pg.fragments import UnsafeFragment
from lifeboat.pg.models import DatabaseSchema, QualifiedName, TableDef
from lifeboat.pg.parallel import run_on_connections, run_statements
from lifeboat.pg.snapshot import SharedSnapshot

__all__ = [
    "ApplyReport",
    "CopyBatch",
    "DatabaseSchema",
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
    "list_sessions",
    "load_and_apply_post_data",
    "load_key",
    "parts_per_table",
    "pause_autovacuum",
    "post_data_statements",
    "pre_data_statements",
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
