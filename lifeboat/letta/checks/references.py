"""References by name that no foreign key protects: tool rules → tools, MCP tools → their server.

(Attachment rows — tools_agents, sources_agents — are declared foreign keys: see the ``fk`` check.)
"""

from __future__ import annotations

from collections.abc import Iterator

from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, row_findings

# Every tool name a rule mentions: the rule's tool, its children and its default child.
_RULE_TOOL_NAMES = """
WITH rule_names AS (
  SELECT a.id AS agent_id, a.organization_id, n.name
  FROM agents a, json_array_elements(a.tool_rules) r,
  LATERAL (
    SELECT r.value->>'tool_name'
    UNION SELECT json_array_elements_text(CASE WHEN json_typeof(r.value->'children') = 'array'
                                               THEN r.value->'children' END)
    UNION SELECT r.value->>'default_child'
  ) AS n(name)
  WHERE json_typeof(a.tool_rules) = 'array' AND json_typeof(r.value) = 'object' AND n.name IS NOT NULL
)
"""


@check(
    "tool_references",
    "Tool rules name existing, attached tools; MCP tools have their server",
    needs=("agents", "tools"),
    codes=("tool_rules.unknown_tool", "tool_rules.unattached_tool", "tools.mcp_server_missing"),
)
def check_tool_references(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.has("agents", "tool_rules", "organization_id"):
        yield from row_findings(
            ctx,
            Severity.ERROR,
            "tool_rules.unknown_tool",
            "agents",
            _RULE_TOOL_NAMES
            + """
            SELECT rn.agent_id AS id, rn.name AS related FROM rule_names rn
            WHERE NOT EXISTS (SELECT 1 FROM tools t WHERE t.name = rn.name AND t.organization_id = rn.organization_id)
            """,
            "{count} agent(s) have tool rules naming tools that do not exist in their organization: "
            "the agent loop cannot satisfy them",
            "restore the tools (a folder/tool restore) or remove the rules through the API",
        )
        if "tools_agents" in ctx.columns:
            yield from row_findings(
                ctx,
                Severity.WARNING,
                "tool_rules.unattached_tool",
                "agents",
                _RULE_TOOL_NAMES
                + """
                SELECT rn.agent_id AS id, rn.name AS related FROM rule_names rn
                JOIN tools t ON t.name = rn.name AND t.organization_id = rn.organization_id
                WHERE NOT EXISTS (SELECT 1 FROM tools_agents ta WHERE ta.agent_id = rn.agent_id AND ta.tool_id = t.id)
                """,
                "{count} agent(s) have tool rules naming tools that are not attached to them",
                "attach the tools to the agent, or drop the rules",
            )
    if ctx.has("tools", "tool_type", "metadata_") and "mcp_server" in ctx.columns:
        yield from row_findings(
            ctx,
            Severity.WARNING,
            "tools.mcp_server_missing",
            "tools",
            """
            SELECT t.id, coalesce(t.metadata_->'mcp'->>'server_id', t.metadata_->'mcp'->>'server_name') AS related
            FROM tools t
            WHERE t.tool_type = 'external_mcp' AND json_typeof(t.metadata_) = 'object'
              AND NOT EXISTS (
                SELECT 1 FROM mcp_server s
                WHERE s.id = t.metadata_->'mcp'->>'server_id'
                   OR (s.server_name = t.metadata_->'mcp'->>'server_name' AND s.organization_id = t.organization_id))
            """,
            "{count} MCP tool(s) point at an MCP server that no longer exists: calling them fails",
            "re-create the MCP server (same name) or delete the tools",
        )
