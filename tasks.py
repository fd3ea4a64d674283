"""Root Invoke namespace: each capability is one module under `fabfile/tasks/`, composed here."""

from invoke.collection import Collection

from fabfile.tasks import backup as backup_tasks
from fabfile.tasks import build as build_tasks
from fabfile.tasks import certs, command, config, doctor, notify
from fabfile.tasks import cutover as cutover_tasks
from fabfile.tasks import db as db_tasks
from fabfile.tasks import deploy as deploy_tasks
from fabfile.tasks import lock as lock_tasks
from fabfile.tasks import maintenance as maintenance_tasks
from fabfile.tasks import remove as remove_tasks

ns = Collection()
ns.add_collection(config.namespace)
ns.add_task(config.render)
ns.add_collection(certs.namespace)
ns.add_collection(notify.namespace)
ns.add_task(doctor.doctor)
ns.add_task(build_tasks.build)
ns.add_collection(build_tasks.namespace)
for deploy_task in (deploy_tasks.setup, deploy_tasks.deploy, deploy_tasks.plan,
                    deploy_tasks.rollback, deploy_tasks.status, deploy_tasks.logs):
    ns.add_task(deploy_task)
ns.add_task(command.exec_)
ns.add_collection(lock_tasks.namespace)
ns.add_collection(maintenance_tasks.namespace)
ns.add_task(remove_tasks.remove)
db_tasks.namespace.add_task(cutover_tasks.migrate_from_sqlite, name="migrate-from-sqlite")
db_tasks.namespace.add_task(cutover_tasks.cutover, name="cutover")
ns.add_collection(db_tasks.namespace)
ns.add_collection(backup_tasks.namespace)
