"""`lifeboat demo`: the whole story on a throwaway deployment."""

from __future__ import annotations

from lifeboat.cli.app import app


@app.command()
def demo() -> None:
    """Build a throwaway Letta deployment, back it up, damage it, restore it and verify it."""
    from lifeboat.ops.demo import run_demo

    run_demo()
