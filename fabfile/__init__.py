"""Deploy, migrate and back up a containerised web app on VPS hosts (Invoke + Fabric)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_ROOT / "templates"
ENVIRONMENTS_DIR = PROJECT_ROOT / "environments"
