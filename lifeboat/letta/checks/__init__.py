"""Letta-aware consistency checks (``lifeboat verify``): one module per concern, one registry.

Importing this package registers every check; :func:`run_checks` runs them on a
:class:`CheckContext` built by :func:`build_context` inside a read-only transaction.
"""

from lifeboat.letta.checks import (  # noqa: F401  (imported for their @check registrations)
    agent_graph,
    config,
    embeddings,
    files,
    foreign_keys,
    id_formats,
    orphans,
    references,
    runs,
    schema,
    schema_access,
    secrets,
    sequence,
    values,
)
from lifeboat.letta.checks.base import (
    MAX_IDS,
    REGISTRY,
    CheckContext,
    CheckOutcome,
    CheckStatus,
    Finding,
    Severity,
    all_codes,
    run_checks,
)
from lifeboat.letta.checks.context import build_context

# The order checks run and are listed in: structure first, then references, then contents.
CHECK_ORDER = (
    "schema",
    "schema_access",
    "ids",
    "fk",
    "sequence",
    "message_ids",
    "conversations",
    "groups",
    "blocks_agents",
    "archives",
    "files",
    "files_agents",
    "file_blocks",
    "config",
    "values",
    "blocks",
    "message_owners",
    "metrics",
    "tool_references",
    "embeddings",
    "secrets",
    "runs",
    "orphans",
)
_ordered = {name: REGISTRY.pop(name) for name in CHECK_ORDER}
_ordered.update(REGISTRY)
REGISTRY.clear()
REGISTRY.update(_ordered)

__all__ = [
    "CHECK_ORDER",
    "MAX_IDS",
    "REGISTRY",
    "CheckContext",
    "CheckOutcome",
    "CheckStatus",
    "Finding",
    "Severity",
    "all_codes",
    "build_context",
    "run_checks",
]
