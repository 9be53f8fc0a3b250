"""The SQL side of an agent restore, inside its one transaction: stage the rows to write in
temporary tables, delete the live rows of the restored scope the snapshot does not have (children
first), upsert the staged rows (parents first), fix references to rows that do not exist, keep
``message_seq_id`` ahead of every sequence id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.errors import UnsafeRestore
from lifeboat.letta.subgraph import (
    DEFERRED_COLUMNS,
    MESSAGE_SEQUENCE,
    Subgraph,
    TableRows,
    TableSpec,
    all_specs,
)
from lifeboat.ops.agent_restore.facts import LiveSchema
from lifeboat.ops.agent_restore.plan import Decisions, Scope, apply_order, scope_for
from lifeboat.ops.agent_restore.report import Mode, Options, TablePlan
from lifeboat.pg import copybinary
from lifeboat.pg.rows import copy_lines, upsert


@dataclass
class Staged:
    spec: TableSpec
    rows: TableRows
    scope: Scope | None
    stage: str  # temp table name


class Applier:
    """Everything that happens inside the one transaction.

    :meth:`table_applied` runs after each table is written (it keeps Letta's locks alive through
    ``keepalive``); tests subclass it to fail or die half-way.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        live: LiveSchema,
        graph: Subgraph,
        decisions: Decisions,
        options: Options,
        keepalive: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self.live = live
        self.graph = graph
        self.decisions = decisions
        self.options = options
        self.keepalive = keepalive
        self.tables: dict[str, TablePlan] = {}
        self.staged: dict[str, Staged] = {}
        self.warnings: list[str] = []

    # staging
    def stage(self, rows: dict[str, TableRows]) -> None:
        for spec in all_specs():
            snapshot_rows = self.graph.rows(spec.table)
            if snapshot_rows is None or spec.table not in self.live.columns:
                if snapshot_rows is not None and len(snapshot_rows):
                    raise UnsafeRestore(f"the live database has no table {spec.table}: cannot restore it")
                continue
            table_rows = rows[spec.table]
            missing = [c for c in table_rows.columns if c not in self.live.columns[spec.table]]
            if missing and len(table_rows):
                raise UnsafeRestore(
                    f"live table {spec.table} lacks column(s) {', '.join(missing)} the snapshot has; "
                    "restoring would lose data (upgrade or downgrade Letta to the snapshot's revision)"
                )
            name = f"lb_stage_{spec.table}"
            self.conn.execute(
                sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
                    sql.Identifier(name), self.live.table(spec.table)
                )
            )
            if len(table_rows):
                table_rows = self._loadable(spec.table, table_rows)
                copy_lines(
                    self.conn,
                    sql.Identifier(name),
                    table_rows.columns,
                    table_rows.lines,
                    binary=table_rows.binary,
                )
            scope = scope_for(spec, self.graph, self.decisions, self.options)
            self.staged[spec.table] = Staged(spec, table_rows, scope, name)
            self.tables[spec.table] = TablePlan(
                table=spec.table, snapshot_rows=len(snapshot_rows), write=len(table_rows)
            )
        self._analyze_stages()

    def _analyze_stages(self) -> None:
        """Give the planner the real size of the staged tables that hold rows. A temporary table is
        never analyzed by autovacuum and, never analyzed, is assumed to span 10 pages: the
        anti-joins of the staged rows against the live tables (``_drop_dangling``) then hashed the
        whole live table (``block``, ``agents``, ``archives``...) instead of probing its key for the
        few staged rows, a cost that grew with the deployment (185 ms for ``block`` alone at 10,000
        agents, against 0.2 ms after ANALYZE, which takes ~3 ms a table)."""
        names = [sql.Identifier(staged.stage) for staged in self.staged.values() if len(staged.rows)]
        if names:
            self.conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(names)))

    def _loadable(self, table: str, rows: TableRows) -> TableRows:
        """Binary rows load as they are when the live columns have the snapshot's types; a type
        that changed since (another Letta release) takes them as text, which the server converts."""
        if rows.view is None:
            return rows
        live = self.live.types.get(table, {})
        same = all(
            copybinary.base_type(live.get(column, "")) == copybinary.base_type(kind)
            for column, kind in zip(rows.columns, rows.view.types, strict=True)
        )
        return rows if same else rows.as_text()

    def order(self) -> list[str]:
        """Staged tables, parents before children (foreign keys of the live schema)."""
        return apply_order(list(self.staged), self.live.foreign_keys)

    # deleting
    def count_removals(self) -> None:
        for table, staged in self.staged.items():
            if staged.scope is not None:
                query = sql.SQL("SELECT count(*) FROM {} t WHERE {}").format(
                    self.live.table(table), self._removal_where(table, staged)
                )
                row = self.conn.execute(query, (staged.scope.ids,)).fetchone()
                self.tables[table].remove = int(row[0]) if row else 0

    def delete(self, order: list[str]) -> None:
        self._detach_deferred()
        for table in reversed(order):
            staged = self.staged[table]
            if staged.scope is None:
                continue
            where, params = self._removal_where(table, staged), [staged.scope.ids]
            found = self._scanned_first(table, staged)
            if found is not None and not found:
                self.tables[table].remove = 0
                continue
            if found is not None:
                key = self.live.primary_keys[table][0]
                where = sql.SQL("t.{} = ANY(%s) AND {}").format(sql.Identifier(key), where)
                params = [found, staged.scope.ids]
            query = sql.SQL("DELETE FROM {} t WHERE {}").format(self.live.table(table), where)
            self.tables[table].remove = self.conn.execute(query, params).rowcount

    def _scanned_first(self, table: str, staged: Staged) -> list[Any] | None:
        """The primary keys of the table's live rows in scope, when no index starts with the
        scope's key (Letta's ``steps``, ``step_metrics`` and ``run_metrics`` have none on
        ``agent_id``): finding them reads the whole table, which a SELECT may share among
        PostgreSQL's parallel workers and a DELETE may not (at 10,000 agents the 500,000 ``steps``
        took most of the apply). The DELETE that follows looks the rows up by primary key and
        checks the scope again. None: delete in one statement (an index finds the rows)."""
        scope = staged.scope
        key = self.live.primary_keys.get(table) or []
        if scope is None or scope.via is not None or len(key) != 1:
            return None
        if scope.key in self.live.indexed.get(table, set()):
            return None
        query = sql.SQL("SELECT t.{} FROM {} t WHERE t.{} = ANY(%s)").format(
            sql.Identifier(key[0]), self.live.table(table), sql.Identifier(scope.key)
        )
        return [row[0] for row in self.conn.execute(query, (scope.ids,))]

    def _removal_where(self, table: str, staged: Staged) -> sql.Composable:
        assert staged.scope is not None
        scope = staged.scope
        if scope.via is None:
            in_scope = sql.SQL("t.{} = ANY(%s)").format(sql.Identifier(scope.key))
        else:
            in_scope = sql.SQL("t.{} IN (SELECT id FROM {} WHERE {} = ANY(%s))").format(
                sql.Identifier(scope.key), self.live.table(scope.via[0]), sql.Identifier(scope.via[1])
            )
        key = self.live.primary_keys.get(table)
        if not key:
            return in_scope
        same = sql.SQL(" AND ").join(sql.SQL("s.{0} = t.{0}").format(sql.Identifier(c)) for c in key)
        return sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM {} s WHERE {})").format(
            in_scope, sql.Identifier(staged.stage), same
        )

    def _detach_deferred(self) -> None:
        """Null the cycle-closing columns of rows about to be rewritten (block → block_history)."""
        for table, columns in DEFERRED_COLUMNS.items():
            staged = self.staged.get(table)
            if staged is None or not len(staged.rows):
                continue
            for column in columns:
                self.conn.execute(
                    sql.SQL(
                        "UPDATE {t} SET {c} = NULL WHERE {c} IS NOT NULL AND id IN (SELECT id FROM {s})"
                    ).format(
                        t=self.live.table(table), c=sql.Identifier(column), s=sql.Identifier(staged.stage)
                    )
                )

    # inserting
    def insert(self, order: list[str]) -> None:
        for table in order:
            staged = self.staged[table]
            if not len(staged.rows):
                self.tables[table].written = 0
                continue
            if table == "messages":
                self._sequence_ids(staged)
            self._drop_dangling(table, staged)
            self.tables[table].written = self._upsert(table, staged)
            self.table_applied(table)
        self._attach_deferred()
        self._advance_sequence()

    def table_applied(self, table: str) -> None:
        """``table`` has been written (not committed)."""
        if self.keepalive is not None:
            self.keepalive()

    def _drop_dangling(self, table: str, staged: Staged) -> None:
        """Rows referencing a row that does not exist (now that parents are in): the reference is
        cleared when it may be NULL, else the row is not restored. Reported either way."""
        deferred = DEFERRED_COLUMNS.get(table, ())
        stage = sql.Identifier(staged.stage)
        for fk in self.live.fks_of(table):
            if any(column in deferred for column in fk.columns):
                continue
            present = sql.SQL(" AND ").join(
                sql.SQL("s.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns
            )
            match = sql.SQL(" AND ").join(
                sql.SQL("p.{} = s.{}").format(sql.Identifier(r), sql.Identifier(c))
                for c, r in zip(fk.columns, fk.ref_columns, strict=True)
            )
            dangling = sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})").format(
                present, self.live.table(fk.ref_table), match
            )
            nullable = all(not self.live.columns[table].get(c, True) for c in fk.columns)
            if nullable:
                sets = sql.SQL(", ").join(sql.SQL("{} = NULL").format(sql.Identifier(c)) for c in fk.columns)
                query = sql.SQL("UPDATE {} s SET {} WHERE {}").format(stage, sets, dangling)
                verb = f"cleared {', '.join(fk.columns)} of"
            else:
                query = sql.SQL("DELETE FROM {} s WHERE {}").format(stage, dangling)
                verb = "did not restore"
            count = self.conn.execute(query).rowcount
            if count:
                self.warnings.append(
                    f"{table}: {verb} {count} row(s) whose {fk.ref_table} row does not exist in the live database"
                )

    def _upsert(self, table: str, staged: Staged) -> int:
        live_columns = self.live.columns[table]
        columns = [c for c in staged.rows.columns if c in live_columns] or list(live_columns)
        return upsert(
            self.conn,
            self.live.table(table),
            sql.Identifier(staged.stage),
            columns,
            self.live.primary_keys.get(table) or [],
            null_columns=DEFERRED_COLUMNS.get(table, ()),
        )

    def _attach_deferred(self) -> None:
        for table, columns in DEFERRED_COLUMNS.items():
            staged = self.staged.get(table)
            if staged is None or not len(staged.rows):
                continue
            for column in columns:
                fk = next((f for f in self.live.fks_of(table) if f.columns == (column,)), None)
                exists: sql.Composable = sql.SQL("")
                if fk is not None:
                    exists = sql.SQL(" AND EXISTS (SELECT 1 FROM {} p WHERE p.{} = s.{})").format(
                        self.live.table(fk.ref_table),
                        sql.Identifier(fk.ref_columns[0]),
                        sql.Identifier(column),
                    )
                self.conn.execute(
                    sql.SQL(
                        "UPDATE {t} t SET {c} = s.{c} FROM {s} s WHERE t.id = s.id AND s.{c} IS NOT NULL{e}"
                    ).format(
                        t=self.live.table(table),
                        c=sql.Identifier(column),
                        s=sql.Identifier(staged.stage),
                        e=exists,
                    )
                )

    # messages.sequence_id
    def _sequence_ids(self, staged: Staged) -> None:
        """Keep the snapshot's sequence ids where free; else take new ones from message_seq_id, in
        the snapshot's order (the API lists messages by sequence id)."""
        if "sequence_id" not in staged.rows.columns or not len(staged.rows):
            return
        stage = sql.Identifier(staged.stage)
        if self.options.mode is Mode.IN_PLACE:
            clash = self.conn.execute(
                sql.SQL(
                    "SELECT EXISTS (SELECT 1 FROM {} m JOIN {} s ON s.sequence_id = m.sequence_id AND s.id <> m.id)"
                ).format(self.live.table("messages"), stage)
            ).fetchone()
            if not (clash and clash[0]):
                return
            self.warnings.append("messages: sequence ids were taken by other messages; renumbered in order")
        old = [
            r[0] for r in self.conn.execute(sql.SQL("SELECT sequence_id FROM {} ORDER BY 1").format(stage))
        ]
        new = sorted(
            r[0]
            for r in self.conn.execute(
                sql.SQL("SELECT nextval({}) FROM generate_series(1, %s)").format(
                    sql.Literal(f"{self.live.schema}.{MESSAGE_SEQUENCE}")
                ),
                (len(old),),
            )
        )
        self.conn.execute(
            sql.SQL(
                "UPDATE {} s SET sequence_id = m.new FROM unnest(%s::bigint[], %s::bigint[]) AS m(old, new) "
                "WHERE s.sequence_id = m.old"
            ).format(stage),
            (old, new),
        )

    def _advance_sequence(self) -> None:
        """``message_seq_id`` must stay ahead of every sequence id (Letta inserts with nextval)."""
        if "messages" not in self.staged:
            return
        sequence = sql.Identifier(self.live.schema, MESSAGE_SEQUENCE)
        self.conn.execute(
            sql.SQL(
                "SELECT setval({name}, m.high) FROM (SELECT max(sequence_id) AS high FROM {messages}) m, {seq} q "
                "WHERE m.high > q.last_value"
            ).format(
                name=sql.Literal(f"{self.live.schema}.{MESSAGE_SEQUENCE}"),
                messages=self.live.table("messages"),
                seq=sequence,
            )
        )
