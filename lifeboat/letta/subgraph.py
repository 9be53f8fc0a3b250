"""What "one agent" is (docs/LETTA.md §4), as data, and how to collect it from any row source.

An agent's subgraph has two parts:

* **owned rows**: every row keyed by the agent (its ``agents`` row, tags, secrets, all messages,
  conversations, runs, steps, metrics, and the association rows that attach it to shared
  things). They die with the agent and are always restored.
* **entities** it points to: memory blocks, archives, tools, folders (sources), identities and
  groups, each with its own child rows (block history, archival passages, files...). Entities
  can be shared with other agents, so restoring them follows a policy (see
  :mod:`lifeboat.ops.agent_restore.plan`).

Groups the agent *manages* pull their member agents into the subgraph (the sleeptime sibling
comes with its main agent); groups it merely *belongs to* are entities like any other.

:func:`collect` walks the graph over a :data:`RowSource` (a snapshot in the repository, read
through zone maps, or anything else that can answer "rows of table T whose column C is one of
these keys"). It knows nothing about repositories or databases.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from lifeboat.pg import copybinary
from lifeboat.pg.copybinary import TextView

# -- the definition -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """One table of the subgraph.

    ``key``: the column rows are selected by; in place it is also the scope of the live rows they
    replace. ``owner``: ``"agent"`` or the entity kind the rows belong to. ``via``: when ``key``
    holds ids of another table's rows, that table and its column holding the owner's id
    (``file_contents.file_id`` → ``files.source_id``).
    """

    table: str
    key: str
    owner: str
    via: tuple[str, str] | None = None


AGENT = "agent"

#: Rows owned by the agent, in reading order. ``agents`` is keyed by its own id.
OWNED: tuple[TableSpec, ...] = (
    TableSpec("agents", "id", AGENT),
    TableSpec("agents_tags", "agent_id", AGENT),
    TableSpec("agent_environment_variables", "agent_id", AGENT),
    TableSpec("messages", "agent_id", AGENT),
    TableSpec("conversations", "agent_id", AGENT),
    TableSpec("conversation_messages", "agent_id", AGENT),
    TableSpec("blocks_conversations", "conversation_id", AGENT, via=("conversations", "agent_id")),
    TableSpec("files_agents", "agent_id", AGENT),
    TableSpec("runs", "agent_id", AGENT),
    TableSpec("run_metrics", "agent_id", AGENT),
    TableSpec("steps", "agent_id", AGENT),
    TableSpec("step_metrics", "agent_id", AGENT),
    TableSpec("llm_batch_items", "agent_id", AGENT),
    TableSpec("archives_agents", "agent_id", AGENT),
    TableSpec("blocks_agents", "agent_id", AGENT),
    TableSpec("tools_agents", "agent_id", AGENT),
    TableSpec("sources_agents", "agent_id", AGENT),
    TableSpec("identities_agents", "agent_id", AGENT),
    TableSpec("groups_agents", "agent_id", AGENT),
)


@dataclass(frozen=True)
class EntityKind:
    """A kind of row agents point to. ``named``: its natural key (unique per organization), when the
    rows are organization objects found by name; ``org_object``: never exclusive to one agent."""

    kind: str
    table: str
    children: tuple[TableSpec, ...] = ()
    named: tuple[str, ...] = ()
    org_object: bool = False
    label: str = "id"  # the column shown to people


ENTITIES: dict[str, EntityKind] = {
    "block": EntityKind(
        "block",
        "block",
        (
            TableSpec("block_history", "block_id", "block"),
            TableSpec("blocks_tags", "block_id", "block"),
            TableSpec("identities_blocks", "block_id", "block"),
        ),
        label="label",
    ),
    "archive": EntityKind(
        "archive",
        "archives",
        (
            TableSpec("archival_passages", "archive_id", "archive"),
            TableSpec("passage_tags", "archive_id", "archive"),
        ),
        label="name",
    ),
    "tool": EntityKind("tool", "tools", named=("name", "organization_id"), org_object=True, label="name"),
    "source": EntityKind(
        "source",
        "sources",
        (
            TableSpec("files", "source_id", "source"),
            TableSpec("source_passages", "source_id", "source"),
            TableSpec("file_contents", "file_id", "source", via=("files", "source_id")),
        ),
        named=("name", "organization_id"),
        org_object=True,
        label="name",
    ),
    "identity": EntityKind(
        "identity",
        "identities",
        named=("identifier_key", "project_id", "organization_id"),
        org_object=True,
        label="identifier_key",
    ),
    "group": EntityKind(
        "group", "groups", (TableSpec("groups_blocks", "group_id", "group"),), label="manager_type"
    ),
}

#: (table, column, entity kind): rows of ``table`` point to entities of that kind via ``column``.
REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("blocks_agents", "block_id", "block"),
    ("blocks_conversations", "block_id", "block"),
    ("groups_blocks", "block_id", "block"),
    ("identities_blocks", "identity_id", "identity"),
    ("tools_agents", "tool_id", "tool"),
    ("sources_agents", "source_id", "source"),
    ("files_agents", "source_id", "source"),
    ("identities_agents", "identity_id", "identity"),
    ("archives_agents", "archive_id", "archive"),
    ("groups_agents", "group_id", "group"),
)

#: How live agents use an entity, for "who else would this affect": (table, entity column, agent
#: column). Conversation blocks are used by the conversation's agent.
USERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "block": (("blocks_agents", "block_id", "agent_id"),),
    "archive": (("archives_agents", "archive_id", "agent_id"),),
    "tool": (("tools_agents", "tool_id", "agent_id"),),
    "source": (("sources_agents", "source_id", "agent_id"), ("files_agents", "source_id", "agent_id")),
    "identity": (("identities_agents", "identity_id", "agent_id"),),
    "group": (("groups_agents", "group_id", "agent_id"), ("groups", "id", "manager_agent_id")),
}

#: Columns that close a foreign-key cycle (docs/LETTA.md §4): written NULL first, set last.
DEFERRED_COLUMNS: dict[str, tuple[str, ...]] = {"block": ("current_history_entry_id",)}

MESSAGE_SEQUENCE = "message_seq_id"


def all_specs() -> list[TableSpec]:
    """Every table of the subgraph: owned rows, then each entity table (keyed by id) and its children."""
    specs = list(OWNED)
    for entity in ENTITIES.values():
        specs.append(TableSpec(entity.table, "id", entity.kind))
        specs.extend(entity.children)
    return specs


def spec_for(table: str) -> TableSpec:
    for spec in all_specs():
        if spec.table == table:
            return spec
    raise KeyError(table)


def entity_of_table(table: str) -> EntityKind | None:
    for entity in ENTITIES.values():
        if entity.table == table:
            return entity
    return None


# -- rows -----------------------------------------------------------------------------------------

_UNESCAPE = re.compile(rb"\\(.)")
_ESCAPES = {b"t": b"\t", b"n": b"\n", b"r": b"\r", b"\\": b"\\", b"b": b"\b", b"f": b"\f", b"v": b"\v"}
NULL = b"\\N"


def copy_field(raw: bytes) -> str | None:
    """One COPY TEXT field as text (None for NULL). Octal/hex escapes never occur in server output."""
    if raw == NULL:
        return None
    if b"\\" in raw:
        raw = _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), raw)
    return raw.decode("utf-8")


def copy_escape(value: str | None) -> bytes:
    """The COPY TEXT field for ``value``."""
    if value is None:
        return NULL
    text = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text.encode("utf-8")


@dataclass
class TableRows:
    """Rows of one table with their column names: COPY TEXT lines (each ending in ``\\n``) or,
    when ``view`` is set, binary COPY tuples, which ``view`` prints as COPY TEXT fields.

    ``fields``, ``values``, ``records`` and ``where`` read both alike (text fields); ``raw_fields``
    and ``join`` take a row apart and put it back together in its own encoding.
    """

    table: str
    columns: list[str]
    lines: list[bytes] = field(default_factory=list)
    view: TextView | None = None

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def binary(self) -> bool:
        return self.view is not None

    def index(self, column: str) -> int:
        return self.columns.index(column)

    def has(self, column: str) -> bool:
        return column in self.columns

    def fields(self, line: bytes) -> list[bytes]:
        """The row's fields in COPY TEXT form (escaped, ``\\N`` for NULL)."""
        if self.view is not None:
            return self.view.text_fields(line)
        return line[:-1].split(b"\t")

    def field(self, line: bytes, position: int) -> bytes:
        """One field in COPY TEXT form."""
        if self.view is not None:
            return self.view.field(position, copybinary.fields(line)[position])
        return line[:-1].split(b"\t")[position]

    def fields_at(self, line: bytes, positions: list[int]) -> list[bytes]:
        """The fields at ``positions`` in COPY TEXT form (only those are printed)."""
        if self.view is not None:
            raw = copybinary.fields(line)
            return [self.view.field(p, raw[p]) for p in positions]
        split = line[:-1].split(b"\t")
        return [split[p] for p in positions]

    def raw_fields(self, line: bytes) -> list[bytes | None]:
        """The row's fields as stored: escaped text, or binary values (None: NULL)."""
        if self.view is not None:
            return list(copybinary.fields(line))
        return [None if raw == NULL else raw for raw in line[:-1].split(b"\t")]

    def join(self, raw: list[bytes | None]) -> bytes:
        """A row from ``raw_fields``-shaped values."""
        if self.view is not None:
            return copybinary.tuple_of(raw)
        return b"\t".join(NULL if value is None else value for value in raw) + b"\n"

    def stored_text(self, value: str) -> bytes:
        """``value`` as a stored field of a text-like column."""
        return value.encode("utf-8") if self.view is not None else copy_escape(value)

    def with_lines(self, lines: list[bytes]) -> TableRows:
        return TableRows(self.table, self.columns, lines, self.view)

    def as_text(self) -> TableRows:
        """The same rows as COPY TEXT lines."""
        if self.view is None:
            return self
        return TableRows(self.table, self.columns, [self.view.line(line) for line in self.lines])

    def text_lines(self) -> list[bytes]:
        """The rows as COPY TEXT lines (binary rows printed by ``view``)."""
        return self.as_text().lines

    def values(self, column: str) -> list[str | None]:
        if column not in self.columns:
            return []
        position = self.index(column)
        return [copy_field(self.field(line, position)) for line in self.lines]

    def records(self) -> Iterator[dict[str, str | None]]:
        for line in self.lines:
            yield {c: copy_field(v) for c, v in zip(self.columns, self.fields(line), strict=True)}

    def where(self, column: str, keep: Callable[[str | None], bool]) -> TableRows:
        """A copy holding only the rows whose ``column`` value passes ``keep``."""
        if column not in self.columns:
            return self.with_lines(list(self.lines))
        position = self.index(column)
        kept = [line for line in self.lines if keep(copy_field(self.field(line, position)))]
        return self.with_lines(kept)

    def where_in(self, column: str, keys: Iterable[str]) -> TableRows:
        wanted = set(keys)
        return self.where(column, lambda value: value in wanted)


#: ``source(table, key_column, keys)`` → the rows of ``table`` whose ``key_column`` is in ``keys``
#: (every row when ``keys`` is None), or None when the source has no such table.
RowSource = Callable[[str, str, "set[str] | None"], "TableRows | None"]


# -- the collected subgraph -----------------------------------------------------------------------


@dataclass
class Subgraph:
    """The rows of some agents' subgraph, as one snapshot holds them."""

    requested: list[str]
    agent_ids: set[str] = field(default_factory=set)
    tables: dict[str, TableRows] = field(default_factory=dict)
    entities: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in ENTITIES})
    managed_groups: set[str] = field(default_factory=set)

    def rows(self, table: str) -> TableRows | None:
        return self.tables.get(table)

    def ids(self, table: str, column: str = "id") -> set[str]:
        rows = self.tables.get(table)
        return {v for v in rows.values(column) if v is not None} if rows else set()

    def counts(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in sorted(self.tables.items())}

    def agent_names(self) -> dict[str, str]:
        rows = self.tables.get("agents")
        if rows is None:
            return {}
        return {r["id"] or "": r.get("name") or "" for r in rows.records()}

    def entity_label(self, kind: str, entity_id: str) -> str:
        entity = ENTITIES[kind]
        rows = self.tables.get(entity.table)
        if rows is not None and rows.has(entity.label):
            for record in rows.where_in("id", [entity_id]).records():
                return record.get(entity.label) or ""
        return ""


def collect(source: RowSource, agent_ids: Iterable[str]) -> Subgraph:
    """The subgraph of ``agent_ids`` (plus the members of groups they manage) from ``source``."""
    graph = Subgraph(requested=sorted(set(agent_ids)))
    groups = source("groups", "id", None) or TableRows("groups", ["id"])
    graph.agent_ids, graph.managed_groups = _agent_closure(source, groups, set(agent_ids))
    _collect_owned(source, graph)
    member_groups = graph.ids("groups_agents", "group_id")
    graph.entities["group"] = graph.managed_groups | member_groups
    graph.tables["groups"] = groups.where_in("id", graph.entities["group"])
    _collect_entities(source, graph)
    return graph


def _agent_closure(source: RowSource, groups: TableRows, agents: set[str]) -> tuple[set[str], set[str]]:
    """Agents plus the members of every group one of them manages, until nothing new appears."""
    managed: set[str] = set()
    members: TableRows | None = None
    while True:
        found = set()
        for record in groups.records():
            if record.get("manager_agent_id") in agents and record["id"]:
                managed.add(record["id"])
                found |= set(json_list(record.get("agent_ids")))
        if managed and members is None:
            # keyed by agent: finding a group's members means reading the (small) whole table
            members = source("groups_agents", "agent_id", None) or TableRows("groups_agents", [])
        if members is not None and members.has("group_id"):
            found |= {r["agent_id"] for r in members.where_in("group_id", managed).records() if r["agent_id"]}
        if found <= agents:
            return agents, managed
        agents = agents | found


def _collect_owned(source: RowSource, graph: Subgraph) -> None:
    for spec in OWNED:
        keys = graph.agent_ids if spec.via is None else graph.ids(spec.via[0])
        rows = source(spec.table, spec.key, set(keys))
        if rows is not None:
            graph.tables[spec.table] = rows.where_in(spec.key, keys)


def _collect_entities(source: RowSource, graph: Subgraph) -> None:
    """Entities referenced so far, their children, and what those reference in turn (group blocks,
    identities of blocks). The order makes one pass enough: groups → blocks → identities."""
    for kind in ("group", "block", "archive", "tool", "source", "identity"):
        entity = ENTITIES[kind]
        for table, column, target in REFERENCES:
            if target == kind and table in graph.tables:
                graph.entities[kind] |= graph.ids(table, column)
        ids = graph.entities[kind]
        if kind != "group":
            rows = source(entity.table, "id", set(ids))
            if rows is not None:
                graph.tables[entity.table] = rows.where_in("id", ids)
        for child in entity.children:
            keys = ids if child.via is None else graph.ids(child.via[0])
            rows = source(child.table, child.key, set(keys))
            if rows is not None:
                graph.tables[child.table] = rows.where_in(child.key, keys)


def json_list(value: str | None) -> list[str]:
    """A JSON array of strings stored in a ``json`` column (``[]`` for NULL or anything else)."""
    if not value:
        return []
    try:
        parsed = json.loads(value)
    except ValueError:
        return []
    return [item for item in parsed if isinstance(item, str)] if isinstance(parsed, list) else []


# -- id rewriting for copies ----------------------------------------------------------------------

UUID_PATTERN = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def id_uuid(value: str) -> str | None:
    """The uuid part of a Letta id (``agent-<uuid>`` → ``<uuid>``)."""
    match = UUID_PATTERN.search(value.encode())
    return match.group().decode() if match and match.end() == len(value) else None


class IdRemap:
    """Old id → new id, applied to whole COPY lines.

    Every Letta id is ``<prefix>-<uuid4>`` and the uuid alone is unique, so mapping uuids
    rewrites every reference at once: foreign-key columns, ``agents.message_ids``,
    ``groups.agent_ids``, ``groups.last_processed_message_id``, metrics rows whose id *is* the
    run/step id, and ids quoted in JSON. Ids not in the map (the organization, users, shared
    rows that are reused) are left alone.
    """

    def __init__(self) -> None:
        self._map: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._map)

    def renew(self, old_id: str) -> str:
        """Give ``old_id`` a fresh uuid (once); returns the new id."""
        old = id_uuid(old_id)
        if old is None:
            raise ValueError(f"not a Letta id: {old_id!r}")
        new = self._map.setdefault(old.encode(), str(uuid.uuid4()).encode())
        return old_id[: -len(old)] + new.decode()

    def point(self, old_id: str, new_id: str) -> None:
        """Make references to ``old_id`` point to the existing ``new_id``."""
        old, new = id_uuid(old_id), id_uuid(new_id)
        if old is None or new is None:
            raise ValueError(f"not Letta ids: {old_id!r} -> {new_id!r}")
        self._map[old.encode()] = new.encode()

    def get(self, old_id: str) -> str:
        old = id_uuid(old_id)
        if old is None or old.encode() not in self._map:
            return old_id
        return old_id[: -len(old)] + self._map[old.encode()].decode()

    def line(self, line: bytes) -> bytes:
        if not self._map:
            return line
        return UUID_PATTERN.sub(lambda m: self._map.get(m.group(), m.group()), line)
