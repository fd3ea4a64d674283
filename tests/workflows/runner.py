"""Run one step of a workflow here, as the runner would: its `run:` script exactly as the YAML
has it, under the job's shell, with the job's and the step's `env:` resolved.

Only the expressions a test can stand in for are resolved (`secrets.*`, `matrix.*`,
`runner.temp`); any other expression is an error, so a step that depends on something this
cannot reproduce is never run with a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
#: What GitHub runs for `shell: bash` (the default `bash -e {0}` lacks pipefail).
SHELLS = {"bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]}


@dataclass(frozen=True)
class Context:
    """What the expressions of one matrix leg resolve to; an unset secret is empty, as on
    GitHub."""

    matrix: Mapping[str, str]
    secrets: Mapping[str, str]
    runner_temp: str

    def value(self, expression: str) -> str:
        scope, _, name = expression.partition(".")
        if scope == "secrets":
            return self.secrets.get(name, "")
        if scope == "matrix" and name in self.matrix:
            return self.matrix[name]
        if expression == "runner.temp":
            return self.runner_temp
        raise ValueError(f"cannot resolve ${{{{ {expression} }}}} outside GitHub Actions")

    def resolve(self, text: str) -> str:
        return EXPRESSION.sub(lambda m: self.value(m.group(1)), text)


@dataclass(frozen=True)
class Command:
    """A step ready to run: the shell's argv (the script last) and the variables it adds."""

    argv: list[str]
    env: dict[str, str]
    script: str


def step(workflow: dict[str, Any], job_id: str, step_id: str) -> dict[str, Any]:
    found = [s for s in workflow["jobs"][job_id]["steps"] if s.get("id") == step_id]
    assert len(found) == 1, f"jobs.{job_id}: {len(found)} steps with id {step_id!r}"
    return found[0]


def command(workflow: dict[str, Any], job_id: str, step_id: str, context: Context) -> Command:
    """The step `step_id` of `job_id` as the runner would start it in this context."""
    job = workflow["jobs"][job_id]
    item = step(workflow, job_id, step_id)
    shell = item.get("shell") or job.get("defaults", {}).get("run", {}).get("shell")
    assert shell in SHELLS, f"jobs.{job_id}.{step_id}: shell {shell!r} is not one this runs"
    env = {key: context.resolve(str(value))
           for scope in (workflow.get("env", {}), job.get("env", {}), item.get("env", {}))
           for key, value in scope.items()}
    script = item["run"]
    assert not EXPRESSION.search(script), f"jobs.{job_id}.{step_id}: an expression in run:"
    return Command([*SHELLS[shell], script], env, script)
