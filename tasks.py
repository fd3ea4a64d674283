"""Root Invoke namespace: each capability is one module under `fabfile/tasks/`, composed here."""

from invoke.collection import Collection

ns = Collection()
