"""Root Invoke namespace: each capability is one module under `fabfile/tasks/`, composed here."""

from invoke.collection import Collection

from fabfile.tasks import certs, config, notify

ns = Collection()
ns.add_collection(config.namespace)
ns.add_task(config.render)
ns.add_collection(certs.namespace)
ns.add_collection(notify.namespace)
