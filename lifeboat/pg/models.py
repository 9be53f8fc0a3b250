"""What a schema capture records: plain, JSON-serializable models (they go into manifests).

SQL fragments (types, defaults, constraint and index definitions) are stored as the server
printed them with ``search_path = pg_catalog``, so every name in them is schema-qualified and
they mean the same thing whatever the search_path of the session that replays them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from psycopg import sql

FORMAT_VERSION = 1


class _Model(BaseModel):
    # ``schema`` would shadow a BaseModel attribute, hence ``schema_`` serialized as "schema".
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class QualifiedName(_Model):
    schema_: str = Field(alias="schema")
    name: str

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True, frozen=True)

    def identifier(self) -> sql.Identifier:
        from psycopg import sql  # here: reading a snapshot's schema needs no psycopg

        return sql.Identifier(self.schema_, self.name)

    def __str__(self) -> str:
        return f"{self.schema_}.{self.name}"


class Grant(_Model):
    """One entry of an object's ACL (``aclexplode``); grantee ``None`` means PUBLIC."""

    grantee: str | None
    privilege: str
    grantable: bool = False


class DatabaseSetting(_Model):
    """``ALTER DATABASE d SET name = value`` (role ``None``) or ``ALTER ROLE r IN DATABASE d SET``."""

    role: str | None = None
    name: str
    value: str


class DatabaseInfo(_Model):
    name: str
    owner: str
    encoding: str
    collate: str
    ctype: str
    comment: str | None = None
    grants: list[Grant] | None = None  # None: default privileges (PUBLIC may CONNECT and TEMP)


class SchemaDef(_Model):
    name: str
    owner: str
    comment: str | None = None
    grants: list[Grant] | None = None  # None: default privileges


class ExtensionDef(_Model):
    name: str
    schema_: str = Field(alias="schema")
    version: str


class EnumDef(_Model):
    schema_: str = Field(alias="schema")
    name: str
    owner: str
    labels: list[str]
    comment: str | None = None

    @property
    def qualified(self) -> QualifiedName:
        return QualifiedName(schema=self.schema_, name=self.name)


class SequenceOwner(_Model):
    """The column a sequence is ``OWNED BY`` (``identity``: it is that column's identity sequence)."""

    table: QualifiedName
    column: str
    identity: bool = False


class SequenceDef(_Model):
    schema_: str = Field(alias="schema")
    name: str
    owner: str
    data_type: str
    start: int
    increment: int
    min_value: int
    max_value: int
    cache: int
    cycle: bool
    unlogged: bool = False
    last_value: int
    is_called: bool
    owned_by: SequenceOwner | None = None
    comment: str | None = None
    grants: list[Grant] | None = None

    @property
    def qualified(self) -> QualifiedName:
        return QualifiedName(schema=self.schema_, name=self.name)


class ColumnDef(_Model):
    name: str
    type: str  # format_type(), schema-qualified when not in pg_catalog
    not_null: bool = False
    not_null_name: str | None = None  # PostgreSQL 18+ names NOT NULL constraints (kept across renames)
    default: str | None = None  # pg_get_expr(); the generation expression when ``generated``
    identity: Literal["", "a", "d"] = ""  # a: ALWAYS, d: BY DEFAULT
    generated: Literal["", "s", "v"] = ""  # s: STORED, v: VIRTUAL (PostgreSQL 18)
    collation: str | None = None  # quoted, qualified; only when not the type's default
    comment: str | None = None

    @property
    def copyable(self) -> bool:
        """Generated columns are computed by the server; COPY can neither write nor need them."""
        return not self.generated


ConstraintKind = Literal["p", "u", "c", "f", "x"]


class ConstraintDef(_Model):
    name: str
    kind: ConstraintKind  # p primary key, u unique, c check, f foreign key, x exclusion
    definition: str  # pg_get_constraintdef()
    columns: list[str] = []
    validated: bool = True
    deferrable: bool = False
    deferred: bool = False
    # PRIMARY KEY / UNIQUE: pg_get_indexdef() of the backing index. The restore builds that index
    # (in parallel with the table's other indexes, storage options included) and then attaches
    # it with ADD CONSTRAINT ... USING INDEX.
    index_definition: str | None = None
    references: QualifiedName | None = None
    comment: str | None = None


class IndexDef(_Model):
    name: str
    definition: str  # pg_get_indexdef(): a complete, qualified CREATE INDEX
    comment: str | None = None


class TableDef(_Model):
    schema_: str = Field(alias="schema")
    name: str
    owner: str
    unlogged: bool = False
    # reloptions, e.g. "fillfactor=90", then its TOAST table's as "toast.<name>=<value>"
    options: list[str] = []
    columns: list[ColumnDef]
    constraints: list[ConstraintDef] = []
    indexes: list[IndexDef] = []
    comment: str | None = None
    grants: list[Grant] | None = None
    estimated_rows: float = 0  # pg_class.reltuples (-1 or 0 when never analyzed)
    pages: int = 0
    total_bytes: int = 0  # pg_total_relation_size: heap + toast + indexes

    @property
    def qualified(self) -> QualifiedName:
        return QualifiedName(schema=self.schema_, name=self.name)

    @property
    def copy_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.copyable]

    @property
    def primary_key(self) -> list[str]:
        for constraint in self.constraints:
            if constraint.kind == "p":
                return constraint.columns
        return []

    @property
    def unique_keys(self) -> list[list[str]]:
        """Column lists of every PRIMARY KEY and UNIQUE constraint (primary key first)."""
        keys = [c.columns for c in self.constraints if c.kind == "p"]
        keys += [c.columns for c in self.constraints if c.kind == "u"]
        return keys

    def column(self, name: str) -> ColumnDef:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


class DatabaseSchema(_Model):
    """Everything needed to recreate one database's structure on an empty database."""

    format_version: int = FORMAT_VERSION
    server_version_num: int
    database: DatabaseInfo
    settings: list[DatabaseSetting] = []
    schemas: list[SchemaDef] = []
    extensions: list[ExtensionDef] = []
    enums: list[EnumDef] = []
    sequences: list[SequenceDef] = []
    tables: list[TableDef] = []
    warnings: list[str] = []

    def table(self, schema: str, name: str) -> TableDef:
        for table in self.tables:
            if table.schema_ == schema and table.name == name:
                return table
        raise KeyError(f"{schema}.{name}")

    def tables_biggest_first(self) -> list[TableDef]:
        return sorted(self.tables, key=lambda table: (-table.total_bytes, table.schema_, table.name))

    @property
    def roles(self) -> set[str]:
        """Every role the schema names as an owner or grantee."""
        owners = {self.database.owner}
        owners |= {s.owner for s in self.schemas} | {e.owner for e in self.enums}
        owners |= {s.owner for s in self.sequences} | {t.owner for t in self.tables}
        owners |= {setting.role for setting in self.settings if setting.role}
        for grants in (
            [s.grants for s in self.schemas]
            + [s.grants for s in self.sequences]
            + [t.grants for t in self.tables]
        ):
            owners |= {grant.grantee for grant in grants or [] if grant.grantee}
        return owners
