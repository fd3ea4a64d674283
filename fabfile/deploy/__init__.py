"""`inv deploy` and its companions, shaped as config -> facts -> plan -> execute.

- `facts`: one remote script reports everything a deploy decides on; a pure parser reads it.
- `plan`: pure functions from config, facts and rendered files to the steps to run.
- `rollout`, `release`, `lock`, `audit`: the pieces those steps are made of.
- `execute`: runs plans on hosts (lock, steps, smoke test, rollback, finish), host by host.
- `scripts/`: the constant shell scripts the steps run on a host, values as "$1", "$2", ...
"""
