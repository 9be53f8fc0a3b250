"""A hand-made database with every PostgreSQL trait of a migrated Letta V1 database that makes a
restore hard (docs/LETTA.md §1, §3, §9), without anything from Letta itself."""

from __future__ import annotations

import psycopg
from psycopg import sql

from lifeboat.sandbox.postgres import Cluster

OWNER_ROLE = "letta"
READER_ROLE = "lifeboat_reader"

SCHEMA_SQL = """
CREATE TYPE sandboxtype AS ENUM ('E2B', 'MODAL', 'LOCAL');
CREATE TYPE vectordbprovider AS ENUM ('NATIVE', 'TPUF', 'PINECONE');
CREATE TYPE stepstatus AS ENUM ('PENDING', 'SUCCESS', 'FAILED', 'CANCELLED');
CREATE TYPE stopreasontype AS ENUM ('end_turn', 'error', 'invalid_tool_call');  -- orphan, unused
COMMENT ON TYPE stopreasontype IS 'left behind by a migration';

CREATE SEQUENCE message_seq_id;

CREATE TABLE organizations (
    id varchar NOT NULL PRIMARY KEY,
    name varchar NOT NULL,
    created_at timestamptz DEFAULT now(),
    is_deleted boolean NOT NULL DEFAULT false,
    _created_by_id varchar
);
CREATE TABLE agents (
    id varchar NOT NULL PRIMARY KEY,
    organization_id varchar NOT NULL REFERENCES organizations(id),
    name varchar,
    system text,
    message_ids json,
    embedding_config json,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);
COMMENT ON TABLE agents IS 'one row per agent';
COMMENT ON COLUMN agents.system IS 'the system prompt';
CREATE TABLE block (
    id varchar NOT NULL PRIMARY KEY,
    label varchar NOT NULL,
    value text NOT NULL,
    "limit" integer,
    current_history_entry_id varchar,
    organization_id varchar REFERENCES organizations(id),
    version integer NOT NULL DEFAULT 1,
    CONSTRAINT unique_block_id_label UNIQUE (id, label)
);
CREATE TABLE block_history (
    id varchar NOT NULL PRIMARY KEY,
    block_id varchar NOT NULL,
    sequence_number integer NOT NULL,
    value text,
    CONSTRAINT fk_block_history_block_id FOREIGN KEY (block_id) REFERENCES block(id) ON DELETE CASCADE
);
ALTER TABLE block ADD CONSTRAINT fk_block_current_history_entry
    FOREIGN KEY (current_history_entry_id) REFERENCES block_history(id) ON DELETE SET NULL;
CREATE INDEX ix_block_history_block_id_sequence ON block_history (block_id, sequence_number);

-- no primary key, only UNIQUE; composite deferrable FK with ON UPDATE CASCADE
CREATE TABLE blocks_agents (
    agent_id varchar NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    block_id varchar NOT NULL,
    block_label varchar NOT NULL,
    CONSTRAINT unique_label_per_agent UNIQUE (agent_id, block_label),
    CONSTRAINT unique_agent_block UNIQUE (agent_id, block_id),
    CONSTRAINT fk_block_id_label FOREIGN KEY (block_id, block_label) REFERENCES block(id, label)
        ON UPDATE CASCADE DEFERRABLE INITIALLY IMMEDIATE
);
CREATE TABLE agents_tags (
    agent_id varchar NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    tag varchar NOT NULL,
    CONSTRAINT unique_agent_tag UNIQUE (agent_id, tag)
);
CREATE INDEX ix_agents_tags_tag_agent ON agents_tags (tag, agent_id);

CREATE TABLE messages (
    id varchar NOT NULL PRIMARY KEY,
    agent_id varchar NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    role varchar NOT NULL,
    text text,
    content json,
    tool_calls json,
    sequence_id bigint NOT NULL DEFAULT nextval('message_seq_id'),
    created_at timestamptz NOT NULL DEFAULT now(),
    is_deleted boolean NOT NULL DEFAULT false,
    CONSTRAINT uq_messages_sequence_id UNIQUE (sequence_id)
);
CREATE INDEX ix_messages_agent_created_at ON messages (agent_id, created_at);
CREATE INDEX ix_messages_not_deleted ON messages (agent_id, sequence_id) WHERE NOT is_deleted;

CREATE TABLE runs (
    id varchar NOT NULL PRIMARY KEY,
    agent_id varchar REFERENCES agents(id) ON DELETE CASCADE,
    status varchar NOT NULL,
    completed_at timestamp without time zone,
    callback_sent_at timestamp without time zone,
    metadata_ json
);
CREATE TABLE steps (
    id varchar NOT NULL,
    run_id varchar REFERENCES runs(id) ON DELETE SET NULL,
    status stepstatus DEFAULT 'PENDING'::stepstatus,
    completion_tokens integer NOT NULL DEFAULT 0,
    prompt_tokens integer NOT NULL DEFAULT 0,
    CONSTRAINT pk_steps_id PRIMARY KEY (id),
    CONSTRAINT ck_steps_tokens CHECK (completion_tokens >= 0 AND prompt_tokens >= 0)
);
CREATE TABLE agent_passages (  -- renamed below: PostgreSQL 18 keeps agent_passages_*_not_null names
    id varchar NOT NULL,
    text varchar NOT NULL,
    embedding vector(4096),
    embedding_config json,
    agent_id varchar,
    metadata_ json,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_passages_pkey PRIMARY KEY (id),
    CONSTRAINT agent_passages_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents(id) ON DELETE CASCADE
);
ALTER TABLE agent_passages RENAME TO archival_passages;
CREATE TABLE sandbox_configs (
    id varchar NOT NULL PRIMARY KEY,
    type sandboxtype NOT NULL,
    organization_id varchar NOT NULL REFERENCES organizations(id),
    config json NOT NULL,
    CONSTRAINT uix_type_organization UNIQUE (type, organization_id)
);
CREATE TABLE archives (
    id varchar NOT NULL PRIMARY KEY,
    name varchar COLLATE "C" NOT NULL,
    vector_db_provider vectordbprovider NOT NULL DEFAULT 'NATIVE'
);
CREATE TABLE files_agents (
    id varchar NOT NULL,
    file_id varchar NOT NULL,
    agent_id varchar NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    source_id varchar,
    file_name varchar,
    CONSTRAINT files_agents_pkey PRIMARY KEY (id, file_id, agent_id),
    CONSTRAINT uq_file_agent_source UNIQUE NULLS NOT DISTINCT (file_id, agent_id, source_id)
);
CREATE TABLE audit_events (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    note text,
    note_length integer GENERATED ALWAYS AS (length(note)) STORED
) WITH (fillfactor = 90);
CREATE TABLE alembic_version (
    version_num varchar(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
GRANT SELECT ON agents, messages TO lifeboat_reader;
GRANT USAGE ON SCHEMA {schema} TO lifeboat_reader;
"""

# Awkward values on purpose: NULLs, tabs/newlines/backslashes, unicode, big json, vectors.
DATA_SQL = r"""
INSERT INTO organizations VALUES ('org-00000000-0000-4000-8000-000000000000', 'default_org', now(), false, NULL),
    ('org-2', E'tab\there\nnewline \\ backslash', '2024-02-29 23:59:59.123456+00', true, 'user-1');
INSERT INTO agents (id, organization_id, name, system, message_ids, embedding_config)
SELECT 'agent-' || i, 'org-00000000-0000-4000-8000-000000000000', 'agent ' || i || ' 🤖 Ünïcødé',
       CASE WHEN i % 3 = 0 THEN NULL ELSE repeat(E'line\n\ttabbed \\N not null ', 50) END,
       (SELECT json_agg('message-' || i || '-' || j) FROM generate_series(1, 20) j),
       json_build_object('model', 'text-embedding-3-small', 'dim', 1536, 'blob', repeat('x', 20000))
FROM generate_series(1, 30) i;
INSERT INTO block (id, label, value, "limit", organization_id)
SELECT 'block-' || i, CASE WHEN i % 2 = 0 THEN 'human' ELSE 'persona' END, 'memory ' || i || E' \\ \x01', 5000,
       'org-00000000-0000-4000-8000-000000000000'
FROM generate_series(1, 40) i;
INSERT INTO block_history (id, block_id, sequence_number, value)
SELECT 'block_hist-' || i, 'block-' || i, 1, 'old value ' || i FROM generate_series(1, 40) i;
UPDATE block SET current_history_entry_id = 'block_hist-' || substr(id, 7) WHERE substr(id, 7)::int % 2 = 0;
INSERT INTO blocks_agents
SELECT 'agent-' || ((i - 1) % 30 + 1), 'block-' || i, CASE WHEN i % 2 = 0 THEN 'human' ELSE 'persona' END
FROM generate_series(1, 30) i;
INSERT INTO agents_tags SELECT 'agent-' || i, tag FROM generate_series(1, 30) i, unnest(ARRAY['a', 'b b', E'c\td']) tag;
INSERT INTO messages (id, agent_id, role, text, content, tool_calls, created_at, is_deleted)
SELECT 'message-' || i, 'agent-' || (i % 30 + 1), CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'hello ' || i || E'\r\n\\x "quoted" ' || chr(8364) END,
       json_build_array(json_build_object('type', 'text', 'text', 'part ' || i)),
       CASE WHEN i % 5 = 0 THEN '[{"id": "call_1", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]'::json END,
       '2025-01-01 00:00:00+00'::timestamptz + i * interval '1 minute', i % 11 = 0
FROM generate_series(1, 2000) i;
INSERT INTO runs SELECT 'run-' || i, 'agent-' || (i % 30 + 1), CASE WHEN i % 4 = 0 THEN 'running' ELSE 'completed' END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE '2025-03-01 12:00:00.5'::timestamp + i * interval '1 second' END,
       NULL, '{"k": [1, 2, {"x": null}]}'
FROM generate_series(1, 100) i;
INSERT INTO steps (id, run_id, status, completion_tokens)
SELECT 'step-' || i, 'run-' || (i % 100 + 1), (ARRAY['PENDING', 'SUCCESS', 'FAILED', 'CANCELLED'])[i % 4 + 1]::stepstatus, i
FROM generate_series(1, 200) i;
INSERT INTO archival_passages (id, text, embedding, embedding_config, agent_id, metadata_)
SELECT 'passage-' || i, 'passage ' || i,
       CASE WHEN i % 10 = 0 THEN NULL ELSE
            (SELECT array_agg(((i * 7919 + j) % 1000) / 997.0)::vector FROM generate_series(1, 4096) j) END,
       '{"embedding_dim": 1536}', 'agent-' || (i % 30 + 1), NULL
FROM generate_series(1, 60) i;
INSERT INTO sandbox_configs VALUES ('sandbox-1', 'LOCAL', 'org-00000000-0000-4000-8000-000000000000', '{"dir": "/tmp"}'),
    ('sandbox-2', 'E2B', 'org-00000000-0000-4000-8000-000000000000', '{}');
INSERT INTO archives VALUES ('archive-1', 'Zeta', 'NATIVE'), ('archive-2', 'alpha', 'TPUF');
INSERT INTO files_agents VALUES ('file_agent-1', 'file-1', 'agent-1', NULL, 'a.txt'),
    ('file_agent-2', 'file-1', 'agent-2', 'source-1', E'b\nc.txt');
INSERT INTO audit_events (note) SELECT 'event ' || i FROM generate_series(1, 25) i;
INSERT INTO audit_events (note) VALUES (NULL);
INSERT INTO alembic_version VALUES ('1c28e167b74f');
"""


def ensure_roles(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        for role, options in ((OWNER_ROLE, "LOGIN"), (READER_ROLE, "NOLOGIN")):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(role)))


def create_letta_like_database(cluster: Cluster, dbname: str, *, with_data: bool = True) -> str:
    """Create ``dbname`` laid out like Letta's init.sql + migrations; returns the owner's DSN."""
    ensure_roles(cluster)
    cluster.create_database(dbname, owner=OWNER_ROLE)
    schema = sql.Identifier(dbname)
    with psycopg.connect(cluster.dsn(dbname), autocommit=True) as conn:
        # init.sql, as the superuser
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, sql.Identifier(OWNER_ROLE)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET search_path TO {}").format(sql.Identifier(dbname), schema)
        )
        conn.execute(sql.SQL("CREATE EXTENSION vector WITH SCHEMA {}").format(schema))
        conn.execute("DROP SCHEMA public CASCADE")
    # the migrations, as the non-superuser owner
    with psycopg.connect(cluster.dsn(dbname, OWNER_ROLE), autocommit=True) as conn:
        conn.execute(SCHEMA_SQL.replace("{schema}", sql.Identifier(dbname).as_string()))  # type: ignore[arg-type]
        if with_data:
            conn.execute(DATA_SQL)  # type: ignore[arg-type]
    return cluster.dsn(dbname, OWNER_ROLE)
