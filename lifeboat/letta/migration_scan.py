"""Read Letta's alembic migration files and note what each ``upgrade()`` does to existing data.

Used only to (re)generate :mod:`lifeboat.letta.migration_chain`; the files are parsed with
:mod:`ast`, never imported or executed. What is found in ``upgrade()`` (including nested
functions and SQL string literals):

* ``drop_table`` / ``drop_column`` (``op.drop_table``, ``op.drop_column``, ``DROP TABLE``);
* ``delete`` / ``truncate`` (``DELETE FROM`` / ``TRUNCATE`` in SQL text);
* ``alter_type`` (``op.alter_column(..., type_=...)`` or ``ALTER COLUMN … TYPE``);
* ``update`` (``UPDATE`` in SQL text, or SQLAlchemy ``table.update()``): existing rows rewritten;
* ``insert`` (``INSERT INTO`` in SQL text): rows copied or backfilled;
* ``encryption_key``: reads ``LETTA_ENCRYPTION_KEY`` (encrypts values only when it is set);
* ``no_transaction``: ``CREATE INDEX CONCURRENTLY`` (runs outside a transaction).

This is a static reading: a migration that changes data through a helper module would be
missed, which is why the generated module also carries hand-written notes for the migrations
known to lose data (see ``migrations.NOTES``).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

_SQL = {
    "drop_table": re.compile(r"\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?([\w.\"]+)", re.I),
    "drop_column": re.compile(r"\bDROP\s+COLUMN\s+(?:IF\s+EXISTS\s+)?([\w\"]+)", re.I),
    "delete": re.compile(r"\bDELETE\s+FROM\s+([\w.\"]+)", re.I),
    "truncate": re.compile(r"\bTRUNCATE\s+(?:TABLE\s+)?([\w.\"]+)", re.I),
    "alter_type": re.compile(r"\bALTER\s+TABLE\s+([\w.\"]+)\s+ALTER\s+COLUMN\s+\w+\s+TYPE\b", re.I),
    "update": re.compile(r"\bUPDATE\s+([\w.\"?]+)\s+(?:\w+\s+)?SET\b", re.I),
    "insert": re.compile(r"\bINSERT\s+INTO\s+([\w.\"]+)", re.I),
    "no_transaction": re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\b", re.I),
}


@dataclass(frozen=True)
class ScannedMigration:
    revision: str
    down_revision: str | None
    title: str
    effects: tuple[tuple[str, str], ...]  # (kind, target) sorted, unique


def scan_directory(versions: Path) -> list[ScannedMigration]:
    """Every migration of ``versions`` (alembic/versions), in chain order, oldest first."""
    found = {m.revision: m for m in (scan_file(path) for path in sorted(versions.glob("*.py")))}
    children: dict[str | None, list[str]] = {}
    for migration in found.values():
        children.setdefault(migration.down_revision, []).append(migration.revision)
    ordered: list[ScannedMigration] = []
    current: str | None = None
    while children.get(current):
        if len(children[current]) != 1:
            raise ValueError(f"the alembic chain branches after {current}: {children[current]}")
        current = children[current][0]
        ordered.append(found[current])
    if len(ordered) != len(found):
        raise ValueError(f"the alembic chain is not linear ({len(ordered)} of {len(found)} reachable)")
    return ordered


def scan_file(path: Path) -> ScannedMigration:
    tree = ast.parse(path.read_text())
    values = _module_strings(tree)
    revision = values.get("revision")
    if not revision:
        raise ValueError(f"{path.name}: no revision")
    title = (ast.get_docstring(tree) or path.stem).strip().splitlines()[0]
    upgrade = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
    effects = sorted(set(_effects(upgrade))) if upgrade is not None else []
    return ScannedMigration(revision, values.get("down_revision"), title, tuple(effects))


def _module_strings(tree: ast.Module) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for node in tree.body:
        target = value = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
            values[target.id] = value.value if isinstance(value.value, str) else None
    return values


def _effects(function: ast.FunctionDef) -> list[tuple[str, str]]:
    effects: list[tuple[str, str]] = []
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            effects.extend(_call_effects(node))
        elif isinstance(node, ast.JoinedStr):  # f-strings: names interpolated at run time read as "?"
            text = "".join(
                part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "?"
                for part in node.values
            )
            effects.extend(_sql_effects(text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value == "LETTA_ENCRYPTION_KEY":
                effects.append(("encryption_key", "-"))
            effects.extend(_sql_effects(node.value))
    return effects


def _const_args(call: ast.Call) -> list[str]:
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def _call_effects(call: ast.Call) -> list[tuple[str, str]]:
    name = call.func.attr if isinstance(call.func, ast.Attribute) else ""
    args = _const_args(call)
    if name == "drop_table" and args:
        return [("drop_table", args[0])]
    if name == "drop_column" and len(args) >= 2:
        return [("drop_column", f"{args[0]}.{args[1]}")]
    if name == "alter_column" and len(args) >= 2 and any(k.arg == "type_" for k in call.keywords):
        return [("alter_type", f"{args[0]}.{args[1]}")]
    if name == "update" and not call.args and isinstance(call.func, ast.Attribute):
        owner = call.func.value
        table = owner.id if isinstance(owner, ast.Name) else "?"
        return [("update", table)]
    return []


def _sql_effects(text: str) -> list[tuple[str, str]]:
    if len(text) < 12 or not re.search(r"\b(TABLE|FROM|INTO|SET|INDEX)\b", text, re.I):
        return []
    found = []
    for kind, pattern in _SQL.items():
        for match in pattern.finditer(text):
            target = match.group(1).strip('"') if match.groups() else "-"
            found.append((kind, target))
    return found


def render_chain_module(migrations: list[ScannedMigration], source: str) -> str:
    """Python source of :mod:`lifeboat.letta.migration_chain` (deterministic, diff-friendly)."""
    lines = [
        f'"""Letta\'s alembic chain as shipped in {source}, oldest first, with what each upgrade() does',
        "to existing data (generated by ``python -m lifeboat.sandbox.release_schema chain``; do not edit).",
        "",
        "Effect kinds are described in :mod:`lifeboat.letta.migration_scan`.",
        '"""',
        "",
        "from lifeboat.letta.migrations import Migration",
        "",
        "CHAIN: tuple[Migration, ...] = (",
    ]
    for m in migrations:
        effects = "".join(f"({json.dumps(kind)}, {json.dumps(target)}), " for kind, target in m.effects)
        lines.append(
            f"    Migration({json.dumps(m.revision)}, {_literal(m.down_revision)}, "
            f"{json.dumps(m.title)}, ({effects.rstrip(', ')}{',' if len(m.effects) == 1 else ''})),"
        )
    lines.append(")")
    return "\n".join(lines) + "\n"


def _literal(value: str | None) -> str:
    return "None" if value is None else json.dumps(value)
