"""A small, deterministic V1 agent (as the writer's input) for the layout tests."""

from __future__ import annotations

from lifeboat.letta_code.model import (
    SourceAgent,
    SourceBlock,
    SourceConversation,
    SourceFile,
    SourceMessage,
    SourcePassage,
    SourceTool,
)

AGENT_ID = "agent-11111111-2222-4333-8444-555555555555"
DEEP_WORD = "zanzibar-lighthouse"


def _message(n: int, role: str, **kwargs: object) -> SourceMessage:
    return SourceMessage(
        id=f"message-00000000-0000-4000-8000-{n:012d}",
        role=role,
        created_at=f"2026-11-01 10:{n // 60:02d}:{n % 60:02d}.123456+00",
        **kwargs,  # type: ignore[arg-type]
    )


def history(turns: int = 30) -> list[SourceMessage]:
    """System message, then ``turns`` user/assistant pairs; turn 1 mentions DEEP_WORD and calls a tool."""
    messages = [_message(0, "system", content=[{"type": "text", "text": "compiled system prompt"}])]
    n = 1
    for turn in range(turns):
        word = f" about {DEEP_WORD}" if turn == 1 else ""
        messages.append(_message(n, "user", content=[{"type": "text", "text": f"question {turn}{word}"}]))
        n += 1
        if turn == 1:
            call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": "memory_insert", "arguments": '{"label": "human", "new_string": "x"}'},
            }
            messages.append(
                _message(
                    n,
                    "assistant",
                    content=[{"type": "reasoning", "reasoning": "thinking it over"}],
                    tool_calls=[call],
                    model="m",
                )
            )
            n += 1
            messages.append(
                _message(
                    n,
                    "tool",
                    content=[{"type": "text", "text": '{"status": "OK"}'}],
                    tool_call_id="call_1",
                    name="memory_insert",
                )
            )
            n += 1
        messages.append(
            _message(n, "assistant", content=[{"type": "text", "text": f"answer {turn}"}], model="m")
        )
        n += 1
    return messages


def agent(turns: int = 30, window: int = 6) -> SourceAgent:
    messages = history(turns)
    in_context = [messages[0].id] + [m.id for m in messages[-window:]]
    named = SourceConversation(
        id="conv-99999999-2222-4333-8444-555555555555",
        messages=[
            _message(900, "user", content=[{"type": "text", "text": "side chat"}]),
            _message(901, "assistant", content=[{"type": "text", "text": "side answer"}]),
        ],
        in_context_ids=[],
        created_at="2026-11-02 08:00:00+00",
        summary="a side conversation",
    )
    return SourceAgent(
        id=AGENT_ID,
        name="sample-agent",
        created_at="2026-11-01 09:00:00+00",
        updated_at="2026-11-03 09:00:00+00",
        system="You are a sample agent.",
        description="a sample",
        tags=["team-a", "lifeboat-demo"],
        llm_config={
            "model": "gpt-4o-mini",
            "model_endpoint_type": "openai",
            "model_endpoint": "https://api.openai.com/v1",
            "context_window": 32000,
            "max_tokens": 4096,
        },
        conversations=[
            SourceConversation(
                id=None, messages=messages, in_context_ids=in_context, created_at="2026-11-01 09:00:00+00"
            ),
            named,
        ],
        blocks=[
            SourceBlock(
                id="block-1",
                label="persona",
                value="I am the sample persona.",
                description="Who I am",
                limit=5000,
            ),
            SourceBlock(
                id="block-2",
                label="human",
                value="The user likes tea.",
                description=None,
                shared_with=["other-agent"],
            ),
        ],
        passages=[
            SourcePassage(
                id="passage-1",
                text="The archive remembers the harbour.",
                created_at="2026-11-01 09:30:00+00",
                tags=["harbour"],
                archive="sample's Archive",
            )
        ],
        files=[
            SourceFile(
                id="file-1",
                file_name="notes.txt",
                folder="docs",
                text="line one\nline two\n",
                is_open=True,
                visible_lines="1-2",
            )
        ],
        tools=[
            SourceTool(
                id="tool-1",
                name="roll_dice",
                tool_type="custom",
                description="Roll a die.",
                source_code="def roll_dice():\n    return 4\n",
                source_type="python",
                json_schema={"name": "roll_dice"},
            )
        ],
    )
