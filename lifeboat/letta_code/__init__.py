"""Letta Code's local backend, as files on disk: what ``lifeboat migrate --to letta-code`` writes.

Letta Code (the successor of the Letta V1 server) can keep its agents in a plain directory
(``$LETTA_LOCAL_BACKEND_DIR``): one JSON record per agent, one folder per conversation with a
JSONL transcript, and a git repository of Markdown memory files per agent. This package writes
that layout from plain Python values (:mod:`lifeboat.letta_code.model`); it knows nothing of
PostgreSQL or of how the values were read. docs/MIGRATE.md describes the layout and the
mapping.
"""

#: The Letta Code release whose local-backend layout we write (and test against).
LETTA_CODE_VERSION = "0.34.12"
