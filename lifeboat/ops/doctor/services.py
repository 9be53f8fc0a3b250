"""Doctor checks of the services next to the database: the running Letta server and Redis."""

from __future__ import annotations

from lifeboat.letta import revisions
from lifeboat.ops.doctor.report import Run, Status
from lifeboat.pg.connect import one_line
from lifeboat.settings import RedisTarget


def server_check(run: Run, url: str | None) -> None:
    """The server's own version (``GET /v1/health/``) against the database's revision."""
    if not url:
        run.add(
            "letta.server",
            Status.SKIP,
            "no server URL given (--server / LETTA_BASE_URL): version not compared",
        )
        return
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/v1/health/", timeout=5)
        version = str(response.json().get("version") or "")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        run.add("letta.server", Status.SKIP, f"Letta server at {url} not reachable: {one_line(exc)}", url=url)
        return
    if not version:
        run.add("letta.server", Status.WARN, f"{url}/v1/health/ reports no version", url=url)
        return
    expected = revisions.releases_for(run.revision)
    if run.revision is None or version in expected:
        run.add("letta.server", Status.OK, f"Letta server {version} at {url}", url=url, version=version)
        return
    schema = revisions.release_label(run.revision)
    run.add(
        "letta.server",
        Status.WARN,
        f"Letta server {version} at {url}, but the database's schema is Letta {schema} ({run.revision})",
        "a server newer than its schema has not run its migrations (the image runs `alembic upgrade head` at "
        "start); an older server on a newer schema is a downgrade — restore a backup taken with that release",
        url=url,
        version=version,
        schema_release=schema,
    )


def redis_check(run: Run, target: RedisTarget | None) -> None:
    if target is None:
        run.add(
            "redis",
            Status.SKIP,
            "LETTA_REDIS_HOST is not set: Letta runs without Redis (nothing to invalidate)",
        )
        return
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(
        host=target.host,
        port=target.port,
        socket_timeout=3,
        socket_connect_timeout=3,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        run.add(
            "redis",
            Status.FAIL,
            f"cannot reach Redis at {target.host}:{target.port}: {exc}",
            "start Redis or fix LETTA_REDIS_HOST/LETTA_REDIS_PORT; restores flush Letta's stale keys there",
        )
        return
    finally:
        client.close()
    run.add("redis", Status.OK, f"Redis at {target.host}:{target.port} answers")
