"""The statements every object gets after its creation: its comment, its owner, its privileges."""

from __future__ import annotations

from psycopg import sql

from lifeboat.pg.ddl_statement import Statement, roles
from lifeboat.pg.fragments import check_privilege
from lifeboat.pg.models import ConstraintDef, Grant, TableDef


def comment_statements(kind: str, target: sql.Composable, comment: str | None) -> list[Statement]:
    if comment is None:
        return []
    return [Statement(sql.SQL("COMMENT ON {} {} IS {}").format(sql.SQL(kind), target, sql.Literal(comment)))]


def owner_statement(kind: str, target: sql.Composable, owner: str) -> Statement:
    statement = sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kind), target, sql.Identifier(owner))
    return Statement(statement, roles=roles(owner))


def _grantee(grant: Grant) -> sql.Composable:
    return sql.SQL("PUBLIC") if grant.grantee is None else sql.Identifier(grant.grantee)


def privilege_statements(
    kind: str, target: sql.Composable, owner: str, grants: list[Grant] | None
) -> list[Statement]:
    """Reproduce an explicit ACL: revoke what defaults gave, then grant each captured entry."""
    if grants is None:
        return []
    statements = [Statement(sql.SQL("REVOKE ALL ON {} {} FROM PUBLIC").format(sql.SQL(kind), target))]
    if any(grant.grantee == owner for grant in grants):  # the capture left out a default owner ACL
        revoke = sql.SQL("REVOKE ALL ON {} {} FROM {}").format(sql.SQL(kind), target, sql.Identifier(owner))
        statements.append(Statement(revoke, roles=roles(owner)))
    for grant in grants:
        option = sql.SQL(" WITH GRANT OPTION") if grant.grantable else sql.SQL("")
        privilege = check_privilege(grant.privilege, f"{kind.lower()} {target.as_string()} grant")
        statement = sql.SQL("GRANT {} ON {} {} TO {}{}").format(
            privilege, sql.SQL(kind), target, _grantee(grant), option
        )
        statements.append(Statement(statement, roles=roles(grant.grantee)))
    return statements


def constraint_comment_statements(table: TableDef, constraint: ConstraintDef) -> list[Statement]:
    target = sql.SQL("{} ON {}").format(sql.Identifier(constraint.name), table.qualified.identifier())
    return comment_statements("CONSTRAINT", target, constraint.comment)
