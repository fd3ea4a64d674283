"""Moving a running app from its SQLite file to PostgreSQL: snapshots of the host's live file
(`snapshot`), the host-side steps of a cutover (`steps`) and its orchestration (`run`)."""
