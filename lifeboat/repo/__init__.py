"""The repository: blobs, packs, index, snapshots, locks, storage backends. Knows nothing of Postgres."""
