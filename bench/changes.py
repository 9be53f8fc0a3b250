"""The incremental-backup case: about 1 % of the agents changed the way Letta changes them.

Every ``every``-th agent by id (so the changed agents are spread over the whole id range, and the
same ones for the same deployment) gets one more turn: its ``human`` memory block edited, one run
and one step, ten messages shaped like bench/synthetic.py's turns (user, assistant tool call, tool
return, assistant reply, ...) and their ids appended to the agent's in-context ``message_ids``.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import psycopg
from synthetic import message_content, sentence

MESSAGES_PER_AGENT = 10


def change_agents(dsn: str, every: int = 100, seed: int = 7) -> dict[str, Any]:
    """Change every ``every``-th agent (by id); returns how many agents and rows were written."""
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute("SET search_path TO letta")
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]  # type: ignore[index]
        rng = random.Random(f"{seed}-{messages}")  # a new turn each time, the same for the same database
        agents = conn.execute(
            "SELECT id, organization_id FROM (SELECT id, organization_id, row_number() OVER (ORDER BY id) AS n "
            "FROM agents) numbered WHERE n %% %s = 0 ORDER BY id",
            (every,),
        ).fetchall()
        total = conn.execute("SELECT count(*) FROM agents").fetchone()[0]  # type: ignore[index]
        with conn.cursor() as cur:
            for agent_id, org in agents:
                _one_more_turn(cur, rng, agent_id, org)
    return {
        "agents_changed": len(agents),
        "agents_total": total,
        "share": round(len(agents) / total, 4) if total else 0.0,
        "messages_added": len(agents) * MESSAGES_PER_AGENT,
        "runs_added": len(agents),
        "steps_added": len(agents),
        "blocks_edited": len(agents),
    }


def _one_more_turn(cur: psycopg.Cursor[Any], rng: random.Random, agent_id: str, org: str) -> None:
    cur.execute(
        "UPDATE block SET value = value || %s, updated_at = now() WHERE id IN "
        "(SELECT block_id FROM blocks_agents WHERE agent_id = %s AND block_label = 'human')",
        (" " + sentence(rng, 12), agent_id),
    )
    run_id = f"run-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    step_id = f"step-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    cur.execute(
        "INSERT INTO runs (id, agent_id, status, stop_reason, organization_id, completed_at) "
        "VALUES (%s, %s, 'completed', 'end_turn', %s, now())",
        (run_id, agent_id, org),
    )
    cur.execute(
        "INSERT INTO steps (id, agent_id, run_id, status, model, provider_name, prompt_tokens, "
        "completion_tokens, total_tokens, organization_id) "
        "VALUES (%s, %s, %s, 'SUCCESS', 'gpt-4o-mini', 'openai', 1200, 80, 1280, %s)",
        (step_id, agent_id, run_id, org),
    )
    rows = [(f"message-{uuid.UUID(int=rng.getrandbits(128), version=4)}", *shape)
            for shape in _turn_shapes(rng)]  # fmt: skip
    cur.executemany(
        "INSERT INTO messages (id, agent_id, role, content, tool_calls, tool_call_id, run_id, step_id, "
        "organization_id, model) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [(mid, agent_id, role, content, calls, ref, run_id, step_id, org,
          None if role == "user" else "gpt-4o-mini") for mid, role, content, calls, ref in rows],
    )  # fmt: skip
    cur.execute(
        "UPDATE agents SET message_ids = (message_ids::jsonb || %s::jsonb)::json, updated_at = now(), "
        "last_run_completion = now(), last_stop_reason = 'end_turn' WHERE id = %s",
        (json.dumps([row[0] for row in rows]), agent_id),
    )


def _turn_shapes(rng: random.Random) -> list[tuple[str, str, str, str | None]]:
    """Ten messages: two whole turns with a send_message tool call, then a user message and its reply."""
    shapes: list[tuple[str, str, str, str | None]] = []
    while len(shapes) < MESSAGES_PER_AGENT:
        user_text, reply = sentence(rng, rng.randint(8, 60)), sentence(rng, rng.randint(20, 120))
        call_id = f"call_{rng.getrandbits(64):016x}"
        call = [{"id": call_id, "type": "function",
                 "function": {"name": "send_message", "arguments": json.dumps({"message": reply})}}]  # fmt: skip
        shapes += [
            ("user", message_content("user", user_text), "[]", None),
            ("assistant", message_content("assistant", ""), json.dumps(call), None),
            ("tool", message_content("tool", json.dumps({"status": "OK", "message": None})), "[]", call_id),
            ("assistant", message_content("assistant", reply[:200]), "[]", None),
        ]
    return [*shapes[:8], shapes[8], shapes[11]]
