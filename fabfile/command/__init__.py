"""`inv exec`: a command in the app, on a host: in a one-off container of the current
release (its image, env file and networks, as `docker compose run`), or in a running web
container (`--reuse`). `plan` builds the argv, `run` runs it with the terminal attached."""
