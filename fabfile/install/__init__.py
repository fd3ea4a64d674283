"""`inv setup --install`: Docker Engine and the Compose v2 plugin from the host's own
distribution packages (`scripts/install.sh`, run as root), the deploy user in the `docker`
group, the service enabled and running; `run` explains what it changed or why it cannot."""
