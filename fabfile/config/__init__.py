"""Environment configuration: YAML in, one frozen typed `Config` out (see `loader.load_config`)."""

from .loader import available_envs, environments_dir, load_config
from .model import (
    App,
    Backup,
    Build,
    Config,
    Database,
    Deploy,
    Host,
    LocalPostgres,
    Notifications,
    Pool,
    Registry,
    Traefik,
)
from .secrets import REDACTED, Secret, redact

__all__ = [
    "REDACTED",
    "App",
    "Backup",
    "Build",
    "Config",
    "Database",
    "Deploy",
    "Host",
    "LocalPostgres",
    "Notifications",
    "Pool",
    "Registry",
    "Secret",
    "Traefik",
    "available_envs",
    "environments_dir",
    "load_config",
    "redact",
]
