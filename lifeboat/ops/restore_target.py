"""What a ``restore --force`` is about to replace: whose deployment it is and which sessions end.

Checked before anything is created, so a refusal changes nothing:

* a target that holds a different Letta deployment than the snapshot's source (no agent in
  common), no Letta deployment at all, or a Letta deployment when the snapshot is of another
  database, is refused unless ``other_deployment`` — restoring staging's snapshot over
  production is the mistake this catches;
* the sessions connected to the target are listed, because the switch ends them (a Letta server
  reconnects to the restored database).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lifeboat import pg
from lifeboat.errors import UnsafeRestore
from lifeboat.letta import deployment_identity
from lifeboat.ops import snapshot_layout as layout
from lifeboat.repo.manifest import Snapshot


@dataclass
class Replacement:
    """An existing target database that a forced restore replaces."""

    database: str
    sessions: list[pg.Session] = field(default_factory=list)
    other_deployment: str | None = None  # why it is not the snapshot's deployment, when allowed

    def sessions_line(self, verb: str) -> str:
        if not self.sessions:
            return f"no session is connected to database {self.database}"
        listed = "; ".join(session.describe() for session in self.sessions[:10])
        more = f"; and {len(self.sessions) - 10} more" if len(self.sessions) > 10 else ""
        return f"{verb} {len(self.sessions)} session(s) on database {self.database}: {listed}{more}"


def inspect_replacement(
    admin: Any, target_dsn: str, target: str, snapshot: Snapshot, *, other_deployment: bool
) -> Replacement:
    """Refuse a target holding another deployment (unless ``other_deployment``); list its sessions."""
    found = _read_target(target_dsn)
    why = deployment_identity.difference(
        deployment_identity.snapshot_agent_ids(layout.letta_document(snapshot)), found
    )
    if why is not None and not other_deployment:
        raise UnsafeRestore(
            f"database {target} is not the deployment snapshot {snapshot.short_id} was taken from: {why}; "
            "nothing was changed (pass --other-deployment to replace it anyway)"
        )
    return Replacement(target, pg.list_sessions(admin, target), why)


def _read_target(target_dsn: str) -> deployment_identity.DeploymentOnTarget:
    with pg.connect(target_dsn) as conn:
        return deployment_identity.read_target(conn)
