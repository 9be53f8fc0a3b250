"""PostgreSQL, knowing nothing of Letta: snapshots, schema capture/apply, COPY streams, sequences."""
