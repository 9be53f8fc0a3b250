import psycopg
import pytest

from lifeboat.sandbox.postgres import start_cluster


@pytest.mark.parametrize("flavor,major", [("pg18", 18), ("pg16", 16)])
def test_cluster_has_pgvector_and_tcp(flavor: str, major: int) -> None:
    with start_cluster(flavor) as cluster:
        cluster.create_database("scratch")
        cluster.execute("CREATE EXTENSION vector", "scratch")
        with psycopg.connect(cluster.dsn("scratch")) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()[0]
            vec = conn.execute("SELECT '[1,2,3]'::vector").fetchone()[0]
        assert int(version) // 10000 == major
        assert vec == "[1,2,3]"
        data_dir = cluster.data_dir
    assert not data_dir.exists()
