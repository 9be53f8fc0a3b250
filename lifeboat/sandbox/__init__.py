"""Throwaway PostgreSQL + pgvector clusters and real Letta 0.16.8 deployments (demo, drills, tests)."""
