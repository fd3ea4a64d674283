"""Self-healing: a watcher on each host restarts a web container that hangs.

Docker's restart policy brings back a process that exits; a process that hangs keeps its
container running and `unhealthy`, out of Traefik's pool, forever. `scripts/watch.sh` runs
on each host as the deploy user (who may already use Docker: it gains no privilege, and no
container gets the Docker socket) and restarts such a container after
`app.healthcheck.restart_after` seconds, unless it is draining or a deploy holds the lock,
at most `max_restarts` times in `restart_window` seconds before it alerts Slack once and
leaves it to a person. `inv setup` and `inv deploy` install it idempotently (`plan.py`,
`setup.py`); cron or a lingering systemd user unit keeps it running across reboots.
"""
