"""Environment configuration: YAML in, one frozen typed `Config` out (see `loader.load_config`)."""

from .loader import available_envs, environments_dir, load_config
from .model import (
    App,
    Backup,
    Config,
    Database,
    Deploy,
    Host,
    LocalPostgres,
    Notifications,
    Pool,
    Traefik,
)
from .secrets import REDACTED, Secret, redact

__all__ = [
    "REDACTED",
    "App",
    "Backup",
    "Config",
    "Database",
    "Deploy",
    "Host",
    "LocalPostgres",
    "Notifications",
    "Pool",
    "Secret",
    "Traefik",
    "available_envs",
    "environments_dir",
    "load_config",
    "redact",
]
