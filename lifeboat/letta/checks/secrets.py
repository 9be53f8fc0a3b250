"""Secret columns (docs/LETTA.md §10): ``_enc`` values decrypt with the deployment's key.

This is the one check that works per row in Python: decryption needs a PBKDF2 derivation per
value (100,000 iterations, a random salt each), which SQL cannot do. Secret tables are small;
values are decrypted on a thread pool (hashlib releases the GIL) and capped at
:data:`MAX_DECRYPTIONS`, beyond which the finding says how many were sampled.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from psycopg import sql

from lifeboat.letta.checks.base import MAX_IDS, CheckContext, Finding, Severity, check, finding, row_findings
from lifeboat.letta.secrets import SECRET_COLUMNS, DecryptionError, SecretColumn, decrypt, looks_encrypted

MAX_DECRYPTIONS = 1000


@check(
    "secrets",
    "Secret columns decrypt with LETTA_ENCRYPTION_KEY; legacy clear-text columns are empty",
    codes=("secrets.skipped", "secrets.undecryptable", "secrets.not_encrypted", "secrets.plaintext_legacy"),
)
def check_secrets(ctx: CheckContext) -> Iterator[Finding]:
    columns = [c for c in SECRET_COLUMNS if ctx.has(c.table, "id", c.encrypted)]
    for column in columns:
        yield from _legacy_plaintext(ctx, column)
    values = {column: _encrypted_values(ctx, column) for column in columns}
    total = sum(len(found) for found in values.values())
    if ctx.encryption_key is None:
        if total:
            yield finding(
                Severity.INFO,
                "secrets.skipped",
                "-",
                f"{total} encrypted secret value(s) not checked: no encryption key given "
                "(--encryption-key / LETTA_ENCRYPTION_KEY)",
                "run verify with the deployment's LETTA_ENCRYPTION_KEY to prove the secrets are readable",
            )
        return
    budget = MAX_DECRYPTIONS
    for column, found in values.items():
        sample = found[:budget]
        budget -= len(sample)
        yield from _decryption_findings(column, sample, len(found), ctx.encryption_key)


def _legacy_plaintext(ctx: CheckContext, column: SecretColumn) -> Iterator[Finding]:
    if column.legacy is None or not ctx.has(column.table, column.legacy):
        return
    severity = Severity.INFO if column.dual_written else Severity.WARNING
    note = " (Letta 0.16.8 still writes this copy on purpose)" if column.dual_written else ""
    yield from row_findings(
        ctx,
        severity,
        "secrets.plaintext_legacy",
        column.table,
        sql.SQL(
            "SELECT t.id, {name} AS related FROM {table} t WHERE t.{legacy} IS NOT NULL "
            "AND t.{legacy}::text NOT IN ('', 'null', '{{}}')"
        ).format(
            name=sql.Literal(column.legacy),
            table=sql.Identifier(column.table),
            legacy=sql.Identifier(column.legacy),
        ),
        f"{{count}} {column.table} row(s) keep a clear-text {column.legacy}{note}",
        f"clear {column.table}.{column.legacy} once {column.encrypted} holds the value",
    )


def _encrypted_values(ctx: CheckContext, column: SecretColumn) -> list[tuple[str, str]]:
    query = sql.SQL(
        "SELECT id, {enc} FROM {table} WHERE {enc} IS NOT NULL AND {enc} <> '' ORDER BY id"
    ).format(enc=sql.Identifier(column.encrypted), table=sql.Identifier(column.table))
    return [(str(row[0]), str(row[1])) for row in ctx.rows(query)]


def _try_decrypt(value: str, key: str) -> str | None:
    """None when the value decrypts, else the reason."""
    try:
        decrypt(value, key)
    except DecryptionError as exc:
        return str(exc)
    return None


def _decryption_findings(
    column: SecretColumn, sample: list[tuple[str, str]], total: int, key: str
) -> Iterator[Finding]:
    clear = [row_id for row_id, value in sample if not looks_encrypted(value)]
    ciphered = [(row_id, value) for row_id, value in sample if looks_encrypted(value)]
    where = f"{column.table}.{column.encrypted}"
    if clear:
        yield Finding(
            severity=Severity.WARNING,
            check="secrets.not_encrypted",
            table=column.table,
            ids=clear[:MAX_IDS],
            count=len(clear),
            message=f"{len(clear)} {where} value(s) are stored in clear (written while no key was configured)",
            fix="re-save these secrets through the API with LETTA_ENCRYPTION_KEY set",
        )
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        reasons = list(pool.map(lambda item: _try_decrypt(item[1], key), ciphered))
    failed = [(row_id, reason) for (row_id, _), reason in zip(ciphered, reasons, strict=True) if reason]
    if failed:
        sampled = "" if len(sample) == total else f" ({len(sample)} of {total} sampled)"
        yield Finding(
            severity=Severity.ERROR,
            check="secrets.undecryptable",
            table=column.table,
            ids=[row_id for row_id, _ in failed][:MAX_IDS],
            count=len(failed),
            related=sorted({reason for _, reason in failed}),
            message=f"{len(failed)} {where} value(s) do not decrypt with the given key{sampled}: "
            "the server will fail to use them",
            fix="use the deployment's original LETTA_ENCRYPTION_KEY, or re-enter these secrets",
        )
