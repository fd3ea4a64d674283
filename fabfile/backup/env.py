"""What every backup operation starts from: the environment's settings, its bucket, its
database as the host reaches it, the client that runs pg_dump, and the host that runs it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from fabfile.config import Backup, Config, Host, Secret
from fabfile.errors import UserError

from .plan import Client, DbTarget, env_target
from .s3 import Store


@dataclass
class BackupEnv:
    cfg: Config

    @cached_property
    def settings(self) -> Backup:
        if self.cfg.backup is None:
            raise UserError(f"environment {self.cfg.env} has no backup section: add one to "
                            f"environments/{self.cfg.env}.yaml (bucket, prefix, credentials)")
        return self.cfg.backup

    @cached_property
    def store(self) -> Store:
        _require(self.settings.access_key_id, self.settings.secret_access_key)
        return Store(self.settings)

    @cached_property
    def target(self) -> DbTarget:
        db = self.cfg.database
        _require(db.url, db.local.password if db.local else None)
        return env_target(self.cfg)

    @cached_property
    def client(self) -> Client:
        self.settings  # noqa: B018 - raises when there is no backup section
        client = Client.from_config(self.cfg)
        client.check_network(self.target)
        return client

    @property
    def host(self) -> Host:
        """Backups run on the first host (on a swarm: the first manager, which holds the
        deploy lock): its cache holds the recent dumps."""
        if not self.cfg.hosts:
            raise UserError(f"environment {self.cfg.env} lists no hosts")
        from fabfile.swarm.topology import control

        return control(self.cfg)

    @property
    def cache_dir(self) -> str:
        return self.settings.cache_dir


def _require(*secrets: Secret | None) -> None:
    """Tasks load the environment with placeholders for secrets they do not use (CI gives a
    backup job only the backup's secrets); the ones they do use must be real."""
    for secret in secrets:
        if secret is not None and secret.placeholder:
            raise UserError(f"the secret {secret.name} is not set: export it (or put it in "
                            "the environment's .env file)")
