import psycopg

from tests.support.postgres import PgCluster


def test_postgres_answers(pg: PgCluster, pg_db: str) -> None:
    with psycopg.connect(pg_db) as conn:
        row = conn.execute("select current_setting('server_version_num')::int").fetchone()
    assert row is not None and row[0] >= 150000
