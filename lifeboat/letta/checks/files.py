"""Files, their parsed contents and the per-agent file blocks (docs/LETTA.md §6).

A file block is rendered at every step from ``files_agents.visible_content``: the line- or
sentence-numbered window (``N: text``) the LineChunker cut from ``file_contents.text`` when the
agent opened the file, truncated at render time to the agent's per-file char limit. So the
stored window must come from the file's current contents, closed rows carry no window, and an
agent has no more files open than its ``max_files_open``.
"""

from __future__ import annotations

from collections.abc import Iterator

from lifeboat.letta.agent_config import FILE_TRUNCATION_MARKER, MAX_FILES_OPEN_SQL
from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, row_findings

# The first numbered line of a stored window (the header "[Viewing ...]" has no number), whitespace
# normalized and cut to 60 chars: the LineChunker strips lines and, for prose, collapses whitespace.
_FIRST_LINE = r"""left(regexp_replace(btrim(substring(fa.visible_content from '(?n)^[0-9]+: (.*)$')), '\s+', ' ', 'g'), 60)"""


@check(
    "files",
    "Files have their parsed contents and embedded chunks",
    needs=("files", "file_contents", "sources"),
    codes=("files.missing_content", "files.chunk_count"),
)
def check_files(ctx: CheckContext) -> Iterator[Finding]:
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "files.missing_content",
        "files",
        """
        SELECT f.id, f.source_id AS related FROM files f
        WHERE f.processing_status = 'completed'
          AND NOT EXISTS (SELECT 1 FROM file_contents c WHERE c.file_id = f.id)
        """,
        "{count} completed file(s) have no file_contents row: opening them shows nothing",
        "re-upload the files to their folder (the raw upload is not stored in the database)",
    )
    if "source_passages" not in ctx.columns:
        return
    # What Letta 0.16.8 records: an upload ends with chunks_embedded = the passages it stored; an
    # agent-file import re-embeds the contents but leaves chunks_embedded at 0 (or NULL), with
    # total_chunks = the chunks cut (empty ones are not embedded). Folders on Turbopuffer/Pinecone
    # keep their passages outside PostgreSQL.
    native = (
        "s.vector_db_provider::text IN ('NATIVE', 'native')"
        if ctx.has("sources", "vector_db_provider")
        else "true"
    )
    yield from row_findings(
        ctx,
        Severity.WARNING,
        "files.chunk_count",
        "files",
        f"""
        SELECT f.id, concat(f.chunks_embedded, ' recorded (', f.total_chunks, ' cut), ', count(p.id), ' stored') AS related
        FROM files f JOIN sources s ON s.id = f.source_id LEFT JOIN source_passages p ON p.file_id = f.id
        WHERE f.processing_status = 'completed' AND {native}
        GROUP BY f.id, f.chunks_embedded, f.total_chunks
        HAVING CASE WHEN coalesce(f.chunks_embedded, 0) > 0 THEN count(p.id) <> f.chunks_embedded
                    ELSE count(p.id) > coalesce(f.total_chunks, count(p.id)) END
        """,
        "{count} completed file(s) have another number of source_passages than Letta recorded "
        "(chunks_embedded after an upload; at most total_chunks after an agent-file import)",
        "re-upload the files to re-embed them",
    )


@check(
    "file_blocks",
    "File blocks: open windows come from file_contents; open files within the agent's limits",
    needs=("files_agents", "file_contents", "agents"),
    codes=(
        "file_blocks.content_mismatch",
        "file_blocks.closed_with_content",
        "file_blocks.too_many_open",
        "file_blocks.window_limit",
    ),
)
def check_file_blocks(ctx: CheckContext) -> Iterator[Finding]:
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "file_blocks.content_mismatch",
        "files_agents",
        f"""
        SELECT fa.id, fa.file_id AS related
        FROM files_agents fa JOIN file_contents fc ON fc.file_id = fa.file_id
        WHERE NOT fa.is_deleted AND fa.is_open AND {_FIRST_LINE} <> ''
          AND CASE WHEN strpos(fc.text, {_FIRST_LINE}) > 0 THEN false
                   ELSE strpos(regexp_replace(fc.text, '\\s+', ' ', 'g'), {_FIRST_LINE}) = 0 END
        """,
        "{count} open file block(s) show text that is not in their file's contents "
        "(a file without contents is reported by files.missing_content)",
        "close and re-open the files (the open_files tool or PATCH .../files/{file_id}/open) to re-render the window",
    )
    yield from row_findings(
        ctx,
        Severity.WARNING,
        "file_blocks.closed_with_content",
        "files_agents",
        """
        SELECT fa.id, fa.file_id AS related FROM files_agents fa
        WHERE NOT fa.is_deleted AND NOT fa.is_open AND coalesce(fa.visible_content, '') <> ''
        """,
        "{count} closed file(s) still carry a window (Letta clears it on close; the block renders empty)",
        "UPDATE files_agents SET visible_content = NULL for these rows",
    )
    yield from row_findings(
        ctx,
        Severity.WARNING,
        "file_blocks.too_many_open",
        "agents",
        f"""
        SELECT a.id, concat(count(*), ' open, limit ', {MAX_FILES_OPEN_SQL}) AS related
        FROM agents a JOIN files_agents fa ON fa.agent_id = a.id AND NOT fa.is_deleted AND fa.is_open
        GROUP BY a.id HAVING count(*) > {MAX_FILES_OPEN_SQL}
        """,
        "{count} agent(s) have more files open than their max_files_open: their context holds more than planned",
        "close the least recently used files (Letta does this on the next open)",
    )
    if ctx.has("agents", "per_file_view_window_char_limit", "max_files_open"):
        yield from row_findings(
            ctx,
            Severity.WARNING,
            "file_blocks.window_limit",
            "agents",
            f"""
            SELECT a.id, concat(a.max_files_open, ' files, ', a.per_file_view_window_char_limit, ' chars') AS related
            FROM agents a
            WHERE a.per_file_view_window_char_limit <= {len(FILE_TRUNCATION_MARKER)} OR a.max_files_open < 1
            """,
            "{count} agent(s) have a file window too small to show anything but the truncation marker",
            "PATCH the agent's max_files_open / per_file_view_window_char_limit to sane values (or NULL for defaults)",
        )
