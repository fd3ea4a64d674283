"""Backups of the environment's PostgreSQL database to S3-compatible storage.

The dump and the restore run on the host next to the database; S3 is reached from the host
through URLs presigned where the task runs, so the host never holds S3 credentials. See
`plan.py` for what runs on the host and `naming.py` for the layout in the bucket.

Other modules ask `newest_complete_age(cfg)` how old the newest complete backup is.
"""

from .listing import STALE_AFTER, newest_complete_age

__all__ = ["STALE_AFTER", "newest_complete_age"]
