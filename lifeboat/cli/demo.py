"""`lifeboat demo`: the whole story on a throwaway deployment of the real Letta 0.16.8."""

from __future__ import annotations

from typing import Annotated

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app

FlavorOption = Annotated[
    str | None,
    typer.Option(
        "--flavor", help="PostgreSQL of the sandbox: pg18 or pg16 (env LIFEBOAT_PG_FLAVOR, default pg18)."
    ),
]


@app.command()
def demo(
    flavor: FlavorOption = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the throwaway cluster running; print its DSN.")
    ] = False,
    warm_cache: Annotated[
        list[str] | None,
        typer.Option(
            "--warm-cache",
            help="Only build the cached Letta venv and deployment for these flavors (repeatable), e.g. in CI.",
        ),
    ] = None,
) -> None:
    """Build a throwaway Letta deployment, back it up, damage it, restore it and verify it.

    The first run builds the real Letta 0.16.8 server's venv and a populated deployment
    (a few minutes, cached under ~/.cache/lifeboat or LIFEBOAT_CACHE_DIR); later runs load it in seconds.
    """
    from lifeboat.errors import UsageError
    from lifeboat.ops import demo as ops
    from lifeboat.sandbox.postgres import FLAVORS

    unknown = [name for name in [flavor or FLAVORS[0], *(warm_cache or [])] if name not in FLAVORS]
    if unknown:
        raise UsageError(f"unknown PostgreSQL flavor {unknown[0]!r}: use one of {', '.join(FLAVORS)}")
    if warm_cache:
        output.emit({"built_seconds": ops.warm_cache(warm_cache)}, None)
        return
    result = ops.run_demo(
        flavor, keep=keep, on_phase=lambda name: output.info(f"demo: {_LABELS.get(name, name)}")
    )
    output.emit(result, _render)


_LABELS = {
    "deployment_cache": "cached Letta 0.16.8 deployment (the first run builds it: a few minutes)",
    "start_cluster": "throwaway PostgreSQL cluster",
    "load_deployment": "loading the deployment",
    "catalog": "agent catalog",
    "backup": "hot backup into an encrypted repository",
    "damage": "damage: dropping the database",
    "restore": "full restore from the snapshot",
    "verify": "verifying the restored database",
    "server": "starting the real Letta server on the restored database",
}


def _render(result: object) -> None:
    from rich.table import Table

    from lifeboat.ops.demo import DemoResult

    assert isinstance(result, DemoResult)
    table = Table(title=f"Letta agents in the sandbox ({result.flavor}, database {result.database})")
    for column in ("name", "id", "type", "messages", "blocks", "passages", "last run"):
        table.add_column(
            column,
            justify="right" if column in ("messages", "blocks", "passages") else "left",
            no_wrap=column in ("name", "id"),
        )
    for agent in result.agents:
        status = agent.last_run_status or "-"
        style = "yellow" if status in ("created", "running") else None
        table.add_row(
            agent.name,
            agent.id,
            agent.agent_type or "-",
            str(agent.messages),
            str(agent.blocks),
            str(agent.passages),
            f"[{style}]{status}[/]" if style else status,
        )
    output.console.print(table)
    _render_story(result.story)
    phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.timings.items())
    output.console.print(f"{len(result.agents)} agents; phases: {phases}")
    if result.dsn:
        output.console.print(f"kept running: {result.dsn}")


def _render_story(story: dict[str, object]) -> None:
    snapshot = story.get("snapshot")
    if not isinstance(snapshot, dict):
        return
    restore = story.get("restore") or {}
    verify = story.get("verify") or {}
    server = story.get("server") or {}
    assert isinstance(restore, dict) and isinstance(verify, dict) and isinstance(server, dict)
    mark = {True: "[green]yes[/]", False: "[red]NO[/]"}
    output.console.print(
        f"backup: snapshot [bold]{snapshot['short_id']}[/], {snapshot['rows']} rows, "
        f"{snapshot['raw_bytes'] / 1e6:.1f} MB read, {snapshot['bytes_added'] / 1e6:.2f} MB stored "
        f"(encrypted), {snapshot['seconds']:.1f} s"
    )
    output.console.print(f"damage: {story.get('damage')}")
    output.console.print(
        f"restore: {restore.get('seconds', 0):.1f} s into database {restore.get('database')}"
    )
    output.console.print(
        f"verify: clean {mark[bool(verify.get('ok'))]}, catalog identical {mark[bool(verify.get('catalog_identical'))]}"
        f" (findings {verify.get('findings')})"
    )
    output.console.print(
        f"real Letta server on the restored database lists {server.get('agents_listed')} agents, "
        f"the same as before: {mark[bool(server.get('same_agents'))]}"
    )
