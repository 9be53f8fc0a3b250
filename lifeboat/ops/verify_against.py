"""``lifeboat verify --against SNAPSHOT``: a database compared with a snapshot, row by row.

Every table stream of the snapshot is read next to the same table of the database, read in the
snapshot's own order (the stream's ``order_by``: entity key, then primary key) inside one
consistent REPEATABLE READ snapshot of the database shared by ``jobs`` connections. Both sides
stream; :mod:`lifeboat.ops.verify_against_diff` keeps only the rows that differ. The report gives
per table and per agent the rows missing, extra and changed (with the changed columns), and the
sequences whose position differs. With ``agents`` only those agents' subgraphs (docs/LETTA.md §4,
:mod:`lifeboat.letta.subgraph`) are compared, read through the snapshot's zone maps.

With ``since_snapshot``, extra and changed rows whose write timestamp (``updated_at`` /
``created_at``, among the changed columns) is after the snapshot are told apart as normal
traffic; missing rows and changes without such a timestamp are "unexplained" (loss, tampering).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

import psycopg
from psycopg import sql

from lifeboat import pg
from lifeboat.errors import CorruptRepository, UsageError
from lifeboat.letta.subgraph import TableRows, collect
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.agent_restore.source import SnapshotSource
from lifeboat.ops.verify_against_diff import (
    MAX_LISTED,
    RowLayout,
    TableDiff,
    diff_lines,
    diff_streams,
    field_text,
    lines_of,
    written_after,
)
from lifeboat.ops.verify_against_report import (
    AgainstReport,
    AgentReport,
    ChangedRow,
    SequenceReport,
    TableReport,
)
from lifeboat.pg import catalog, copybinary
from lifeboat.pg.connect import describe_target
from lifeboat.pg.copybinary import TextView
from lifeboat.pg.models import DatabaseSchema, TableDef
from lifeboat.repo.manifest import Snapshot, Stream
from lifeboat.repo.repository import Repository

__all__ = ["AgainstOptions", "AgainstReport", "verify_against"]

_STAMP_COLUMNS = ("updated_at", "created_at")
_INSTANT_TYPES = ("timestamp with time zone", "timestamp without time zone")


@dataclass
class AgainstOptions:
    snapshot: str = "latest"
    agents: list[str] = field(default_factory=list)
    since_snapshot: bool = False
    jobs: int = 2


def verify_against(repo: Repository, dsn: str, options: AgainstOptions) -> AgainstReport:
    """Compare the database at ``dsn`` with a snapshot of ``repo`` (see the module docstring)."""
    started_at, started = datetime.now(UTC), time.monotonic()
    snapshot = repo.load_snapshot(options.snapshot)
    schema = layout.schema_document(snapshot)
    comparison = _Comparison(snapshot, schema, options)
    if options.agents:
        _compare_agents(repo, dsn, comparison, options.agents)
    else:
        _compare_all(repo, dsn, comparison, options.jobs)
    return comparison.report(describe_target(dsn), started_at, time.monotonic() - started)


# -- what is compared ------------------------------------------------------------------------------


@dataclass
class _Table:
    stream: Stream
    definition: TableDef
    layout: RowLayout
    key_column: str | None

    @property
    def label(self) -> str:
        return f"{self.definition.schema_}.{self.definition.name}"


def _layout(definition: TableDef, columns: list[str]) -> RowLayout:
    keys = [key for key in definition.unique_keys if key and set(key) <= set(columns)]
    key = tuple(columns.index(c) for c in keys[0]) if keys else tuple(range(len(columns)))
    types = {c.name: c.type for c in definition.columns}
    instants = frozenset(i for i, c in enumerate(columns) if types.get(c) == "timestamp with time zone")
    stamps = tuple(
        columns.index(c) for c in _STAMP_COLUMNS if c in columns and types.get(c) in _INSTANT_TYPES
    )
    return RowLayout(tuple(columns), key, instants, stamps)


def _tables(snapshot: Snapshot, schema: DatabaseSchema) -> list[_Table]:
    found = []
    for (schema_name, name), (stream, attributes) in sorted(layout.table_streams(snapshot).items()):
        try:
            definition = schema.table(schema_name, name)
        except KeyError:
            raise CorruptRepository(
                f"snapshot {snapshot.short_id} has a stream for {schema_name}.{name} but no such table in its schema"
            ) from None
        columns = list(attributes.columns or definition.copy_columns)
        found.append(_Table(stream, definition, _layout(definition, columns), attributes.key))
    return found


class _AgentIndex:
    """Which agents a row concerns: its own agent column, or the agents attached to the entity it
    belongs to (blocks, archives, folders, tools, identities, groups), as the snapshot has them."""

    ENTITY_KEYS: ClassVar[dict[str, tuple[str, str]]] = {
        "block": ("block", "id"),
        "block_history": ("block", "block_id"),
        "blocks_tags": ("block", "block_id"),
        "identities_blocks": ("block", "block_id"),
        "archives": ("archive", "id"),
        "archival_passages": ("archive", "archive_id"),
        "passage_tags": ("archive", "archive_id"),
        "sources": ("source", "id"),
        "files": ("source", "source_id"),
        "source_passages": ("source", "source_id"),
        "tools": ("tool", "id"),
        "identities": ("identity", "id"),
        "groups": ("group", "id"),
        "groups_blocks": ("group", "group_id"),
    }
    JUNCTIONS: ClassVar[dict[str, tuple[str, str]]] = {
        "blocks_agents": ("block", "block_id"),
        "archives_agents": ("archive", "archive_id"),
        "sources_agents": ("source", "source_id"),
        "tools_agents": ("tool", "tool_id"),
        "identities_agents": ("identity", "identity_id"),
        "groups_agents": ("group", "group_id"),
    }

    def __init__(self) -> None:
        self.users: dict[tuple[str, str], set[str]] = {}

    def learn(self, table: str, columns: list[str], lines: Iterable[bytes]) -> None:
        if table not in self.JUNCTIONS or "agent_id" not in columns:
            return
        kind, column = self.JUNCTIONS[table]
        entity_at, agent_at = columns.index(column), columns.index("agent_id")
        for line in lines:
            entity, agent = field_text(line, entity_at), field_text(line, agent_at)
            if entity and agent:
                self.users.setdefault((kind, entity), set()).add(agent)

    def agents_of(self, table: _Table, line: bytes) -> set[str]:
        columns = table.layout.columns
        name = table.definition.name
        if name == "agents" and "id" in columns:
            value = field_text(line, columns.index("id"))
            return {value} if value else set()
        if "agent_id" in columns:
            value = field_text(line, columns.index("agent_id"))
            if value:
                return {value}
        if name in self.ENTITY_KEYS:
            kind, column = self.ENTITY_KEYS[name]
            if column in columns:
                entity = field_text(line, columns.index(column))
                return set(self.users.get((kind, entity or ""), set()))
        return set()


class _Comparison:
    """Collects the per-table results and per-agent tallies into the report."""

    def __init__(self, snapshot: Snapshot, schema: DatabaseSchema, options: AgainstOptions) -> None:
        self.snapshot, self.schema, self.options = snapshot, schema, options
        self.tables = _tables(snapshot, schema)
        self.index = _AgentIndex()
        self.results: list[TableReport] = []
        self.agents: dict[str, AgentReport] = {}
        self.sequences: list[SequenceReport] = []
        self._lock = threading.Lock()  # tables are compared on several threads

    def compare(
        self, table: _Table, snapshot: Iterable[bytes], database: Iterable[bytes], *, chunks: bool = False
    ) -> None:
        """Compare one table: lines (no newline) or, with ``chunks``, streams of whole lines."""
        after = [0]
        instant = self.snapshot.time

        def tally(line: bytes, kind: str) -> None:
            for agent in self.index.agents_of(table, line):
                with self._lock:
                    entry = self.agents.setdefault(agent, AgentReport(agent_id=agent))
                    setattr(entry, kind, getattr(entry, kind) + 1)
                    if table.definition.name not in entry.tables:
                        entry.tables.append(table.definition.name)

        def on_extra(line: bytes) -> None:
            tally(line, "extra")
            if self.options.since_snapshot and written_after(table.layout, line, instant):
                after[0] += 1

        def on_changed(line: bytes, _before: bytes | None, columns: list[str]) -> None:
            tally(line, "changed")
            if self.options.since_snapshot and written_after(table.layout, line, instant, columns):
                after[0] += 1

        diff = (diff_streams if chunks else diff_lines)(
            table.layout,
            snapshot,
            database,
            on_missing=lambda line: tally(line, "missing"),
            on_extra=on_extra,
            on_changed=on_changed,
        )
        self.results.append(self._table_report(table, diff, after[0]))

    def _table_report(self, table: _Table, diff: TableDiff, after: int) -> TableReport:
        key = table.layout

        def label(line: bytes) -> str:
            if len(key.key) == len(key.columns) and len(key.columns) > 3:
                return line.decode(errors="replace")[:200]
            return "/".join(field_text(line, i) or "NULL" for i in key.key)

        differing = diff.missing_count + diff.extra_count + diff.changed_count
        return TableReport(
            table=table.label,
            rows_snapshot=diff.rows_snapshot,
            rows_database=diff.rows_database,
            missing=diff.missing_count,
            extra=diff.extra_count,
            changed=diff.changed_count,
            changed_columns=dict(sorted(diff.changed_columns.items())),
            missing_rows=[label(line) for line in diff.missing[:MAX_LISTED]],
            extra_rows=[label(line) for line in diff.extra[:MAX_LISTED]],
            changed_rows=[ChangedRow(key=label(line), columns=cols) for line, _, cols in diff.changed],
            after_snapshot=after if self.options.since_snapshot else None,
            unexplained=differing - after if self.options.since_snapshot else None,
        )

    def missing_table(self, table: _Table, reason: str) -> None:
        rows = table.stream.records
        self.results.append(
            TableReport(
                table=table.label,
                rows_snapshot=rows,
                rows_database=0,
                missing=rows,
                extra=0,
                changed=0,
                unexplained=rows if self.options.since_snapshot else None,
                after_snapshot=0 if self.options.since_snapshot else None,
                note=reason,
            )
        )

    def report(self, database: str, started_at: datetime, seconds: float) -> AgainstReport:
        tables = sorted(self.results, key=lambda t: t.table)
        summary = {
            "tables": len(tables),
            "tables_differing": sum(1 for t in tables if t.missing or t.extra or t.changed),
            "rows_snapshot": sum(t.rows_snapshot for t in tables),
            "rows_database": sum(t.rows_database for t in tables),
            "missing": sum(t.missing for t in tables),
            "extra": sum(t.extra for t in tables),
            "changed": sum(t.changed for t in tables),
            "sequences_differing": len(self.sequences),
        }
        equal = not (summary["missing"] or summary["extra"] or summary["changed"] or self.sequences)
        ok = equal
        if self.options.since_snapshot:
            summary["after_snapshot"] = sum(t.after_snapshot or 0 for t in tables)
            summary["unexplained"] = sum(t.unexplained or 0 for t in tables)
            ok = summary["unexplained"] == 0 and not any(
                (s.database or 0) < (s.snapshot or 0) for s in self.sequences
            )
        return AgainstReport(
            database=database,
            snapshot=self.snapshot.id,
            snapshot_time=self.snapshot.time,
            agents_compared=sorted(self.options.agents),
            since_snapshot=self.options.since_snapshot,
            started_at=started_at,
            seconds=round(seconds, 3),
            equal=equal,
            ok=ok,
            summary=summary,
            tables=tables,
            agents=sorted(self.agents.values(), key=lambda a: a.agent_id),
            sequences=self.sequences,
        )


# -- the whole database ----------------------------------------------------------------------------


def _compare_all(repo: Repository, dsn: str, comparison: _Comparison, jobs: int) -> None:
    for table in comparison.tables:  # the (small) junction tables, for per-agent attribution
        if table.definition.name in _AgentIndex.JUNCTIONS:
            lines = lines_of(_snapshot_chunks(repo, table))
            comparison.index.learn(table.definition.name, list(table.layout.columns), lines)
    with pg.SharedSnapshot(dsn) as shared:
        with shared.connection() as conn:
            present = _present_columns(conn, comparison.tables)
            comparison.sequences = _sequence_differences(conn, comparison.schema)

        def work(conn: psycopg.Connection, table: _Table) -> None:
            columns = present.get(table.label)
            if columns is None:
                comparison.missing_table(table, "the table does not exist in the database")
                return
            lacking = [c for c in table.layout.columns if c not in columns]
            if lacking:
                comparison.missing_table(table, f"the database table lacks column(s) {', '.join(lacking)}")
                return
            attributes = layout.table_stream(table.stream)
            binary = attributes.binary and _same_types(attributes, columns)
            batches = pg.copy_out(
                conn,
                table.definition.qualified,
                list(table.layout.columns),
                order_by=list(attributes.order_by),
                binary=binary,
            )
            database_chunks: Iterator[bytes] = (batch.data for batch in batches)
            if binary:
                database_chunks = layout.text_lines(attributes, database_chunks, compare=True)
            comparison.compare(
                table, _snapshot_chunks(repo, table, compare=binary), database_chunks, chunks=True
            )

        shared.map(work, _biggest_first(comparison.tables), jobs=max(1, jobs))


def _snapshot_chunks(repo: Repository, table: _Table, *, compare: bool = False) -> Iterator[bytes]:
    """The stream's records as buffers of COPY TEXT lines (binary tuples printed; ``compare``:
    vectors as hex, as the database side of a binary comparison prints them)."""
    attributes = layout.table_stream(table.stream)
    return layout.text_lines(attributes, repo.iter_stream_data(table.stream), compare=compare)


def _same_types(attributes: layout.TableStream, present: dict[str, str]) -> bool:
    """Whether the database's columns have the stream's types, so that both sides can be read
    binary and printed alike (otherwise the database is read as text)."""
    return all(
        copybinary.base_type(present.get(column, "")) == copybinary.base_type(kind)
        for column, kind in zip(attributes.columns, attributes.types or [], strict=True)
    )


def _biggest_first(tables: list[_Table]) -> list[_Table]:
    return sorted(tables, key=lambda t: -t.stream.raw_size)


def _present_columns(conn: psycopg.Connection, tables: list[_Table]) -> dict[str, dict[str, str]]:
    """``schema.table`` → its column names and their types, for the schemas the snapshot's tables
    live in."""
    present = {}
    for schema in sorted({t.definition.schema_ for t in tables}):
        for table, columns in catalog.columns(conn, schema).items():
            present[f"{schema}.{table}"] = {column.name: column.type for column in columns}
    return present


def _sequence_differences(conn: psycopg.Connection, schema: DatabaseSchema) -> list[SequenceReport]:
    found = []
    for sequence in schema.sequences:
        expected = sequence.last_value if sequence.is_called else None
        row = conn.execute(
            sql.SQL("SELECT CASE WHEN is_called THEN last_value END FROM {}").format(
                sequence.qualified.identifier()
            )
        ).fetchone()
        actual = None if row is None else row[0]
        if row is None or actual != expected:
            found.append(SequenceReport(sequence=str(sequence.qualified), snapshot=expected, database=actual))
    return found


# -- some agents -----------------------------------------------------------------------------------


def _compare_agents(repo: Repository, dsn: str, comparison: _Comparison, agent_ids: list[str]) -> None:
    by_name = {t.definition.name: t for t in comparison.tables}
    snapshot_graph = collect(SnapshotSource(repo, comparison.snapshot), agent_ids)
    with pg.SharedSnapshot(dsn) as shared, shared.connection() as conn:
        present = _present_columns(conn, comparison.tables)
        database_graph = collect(_DatabaseSource(conn, by_name, present), agent_ids)
    unknown = sorted(set(agent_ids) - snapshot_graph.ids("agents") - database_graph.ids("agents"))
    if unknown:
        raise UsageError(f"agent(s) {', '.join(unknown)} exist neither in the snapshot nor in the database")
    for graph in (snapshot_graph, database_graph):
        for name, rows in graph.tables.items():
            comparison.index.learn(name, rows.columns, _lines(rows))
    for name in sorted(set(snapshot_graph.tables) | set(database_graph.tables)):
        table = by_name.get(name)
        if table is None:
            continue
        if table.label not in present:
            comparison.missing_table(table, "the table does not exist in the database")
            continue
        lacking = [c for c in table.layout.columns if c not in present[table.label]]
        if lacking:
            comparison.missing_table(table, f"the database table lacks column(s) {', '.join(lacking)}")
            continue
        comparison.compare(table, _lines(snapshot_graph.rows(name)), _lines(database_graph.rows(name)))


def _lines(rows: TableRows | None) -> Iterator[bytes]:
    """COPY TEXT lines without their newline; binary rows printed with vectors as hex."""
    if rows is None:
        return
    view = None if rows.view is None else TextView(rows.view.types, compare=True)
    for line in rows.lines:
        yield line[:-1] if view is None else view.line(line)[:-1]


class _DatabaseSource:
    """A :data:`RowSource` over the database: the snapshot's columns of the rows whose ``key`` is
    one of ``keys``, in the snapshot's order."""

    def __init__(
        self, conn: psycopg.Connection, tables: dict[str, _Table], present: dict[str, dict[str, str]]
    ) -> None:
        self.conn, self.tables, self.present = conn, tables, present

    def __call__(self, name: str, key: str, keys: set[str] | None) -> TableRows | None:
        table = self.tables.get(name)
        if table is None or table.label not in self.present:
            return None
        present = self.present[table.label]
        columns = [c for c in table.layout.columns if c in present]
        attributes = layout.table_stream(table.stream)
        binary = attributes.binary and columns == attributes.columns and _same_types(attributes, present)
        view = layout.text_view(attributes) if binary else None
        if keys is not None and not keys:
            return TableRows(name, columns, view=view)
        where: sql.Composable = sql.SQL("")
        if keys is not None and key in columns:
            where = sql.SQL(" WHERE {} = ANY({})").format(sql.Identifier(key), sql.Literal(sorted(keys)))
        order = list(layout.table_stream(table.stream).order_by)
        statement = sql.SQL("COPY (SELECT {} FROM {}{}{}) TO STDOUT{}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            table.definition.qualified.identifier(),
            where,
            sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(sql.Identifier(c) for c in order))
            if order
            else sql.SQL(""),
            sql.SQL(" (FORMAT binary)") if binary else sql.SQL(""),
        )
        with self.conn.cursor() as cursor, cursor.copy(statement) as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
        if binary:
            return TableRows(name, columns, _binary_rows(data, len(columns)), view)
        lines = [line + b"\n" for line in data.split(b"\n")[:-1]]
        return TableRows(name, columns, lines)


def _binary_rows(data: bytes, width: int) -> list[bytes]:
    """The tuples of a whole ``COPY … (FORMAT binary)`` output."""
    splitter = copybinary.StreamSplitter(width, None)
    body, _ends, _keys = splitter.feed(data)
    splitter.close()
    return copybinary.split_rows(body, width) if body else []
