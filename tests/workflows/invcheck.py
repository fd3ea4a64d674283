"""Find every `inv ...` command in a workflow's `run:` scripts and parse it with Invoke's own
parser against the project's real namespace, as `inv` itself would.

Values unknown until the workflow runs (`${{ ... }}` expressions, `$VAR` expansions) are
opaque: they become a placeholder that any option type accepts, so only the task names and
options are judged. A placeholder in a task-name position is reported, since no task can
be verified there.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from invoke.collection import Collection
from invoke.exceptions import ParseError
from invoke.parser.context import ParserContext
from invoke.parser.parser import Parser
from invoke.program import Program

EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
SHELL_EXPANSION = re.compile(r"\$(?:\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])")
OPAQUE = "0"
SEPARATORS = {";", "&", "&&", "|", "||", "(", ")", "|&", ";;"}
WRAPPERS = {"sudo", "env", "exec", "time", "nice", "command", "nohup"}
INV_NAMES = {"inv", "invoke"}


@dataclass(frozen=True)
class InvCall:
    """One `inv` invocation: where it is, its arguments after `inv`, the line it came from."""

    where: str
    args: tuple[str, ...]
    line: str


def run_scripts(workflow: dict[str, Any], name: str) -> Iterator[tuple[str, str]]:
    """(location, script) for every `run:` of every step of every job."""
    for job_id, job in (workflow.get("jobs") or {}).items():
        for index, step in enumerate(job.get("steps") or []):
            if isinstance(step, dict) and isinstance(step.get("run"), str):
                label = step.get("name") or step.get("id") or f"steps[{index}]"
                yield f"{name}: jobs.{job_id} / {label}", step["run"]


def logical_lines(script: str) -> Iterator[str]:
    """Shell lines with `\\`-newline continuations joined and quoted newlines kept inside."""
    text = EXPRESSION.sub(OPAQUE, script).replace("\\\n", " ")
    pending = ""
    for raw in text.splitlines():
        pending = f"{pending}\n{raw}" if pending else raw
        try:
            shlex.split(pending, comments=True)
        except ValueError:
            continue
        yield pending
        pending = ""
    if pending:
        yield pending


def commands(line: str) -> Iterator[list[str]]:
    """The simple commands of one line, split at `;`, `&&`, `||`, `|`, `&` and parentheses."""
    lexer = shlex.shlex(SHELL_EXPANSION.sub(OPAQUE, line), posix=True,
                        punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    current: list[str] = []
    for token in lexer:
        if token in SEPARATORS:
            if current:
                yield current
            current = []
        else:
            current.append(token)
    if current:
        yield current


def inv_args(command: list[str]) -> list[str] | None:
    """The arguments after `inv`/`invoke`/`python -m invoke` when this command runs Invoke."""
    i = 0
    while i < len(command) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", command[i]):
        i += 1
    while i < len(command) and PurePosixPath(command[i]).name in WRAPPERS:
        i += 1
        while i < len(command) and (command[i].startswith("-")
                                    or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", command[i])):
            i += 1
    if i >= len(command):
        return None
    word = PurePosixPath(command[i]).name
    if word in INV_NAMES:
        return command[i + 1:]
    if word.startswith("python") and command[i + 1:i + 3] == ["-m", "invoke"]:
        return command[i + 3:]
    return None


def find_calls(workflow: dict[str, Any], name: str) -> list[InvCall]:
    calls = []
    for where, script in run_scripts(workflow, name):
        for line in logical_lines(script):
            for command in commands(line):
                args = inv_args(command)
                if args is not None:
                    calls.append(InvCall(where, tuple(args), line.strip()))
    return calls


def contexts(namespace: Collection) -> list[ParserContext]:
    """`namespace.to_contexts()` without its side effect: Invoke's `get_arguments()` pops each
    entry it reads from a task's `help`, which would leave `inv --help` (and any later test
    of the help texts) without them."""
    saved = {name: dict(namespace[name].help) for name in namespace.task_names}
    try:
        return namespace.to_contexts()
    finally:
        for name, help_texts in saved.items():
            namespace[name].help = help_texts


def problems(call: InvCall, namespace: Collection) -> list[str]:
    """Why `inv` would reject these arguments: unknown task or option, missing or bad value."""
    program = Program(namespace=namespace)
    parser = Parser(initial=ParserContext(args=program.core_args()),
                    contexts=contexts(namespace))
    try:
        parsed = parser.parse_argv(list(call.args))
    except ParseError as exc:
        return [f"{call.where}: `inv {' '.join(call.args)}`: {exc}"]
    except ValueError as exc:
        return [f"{call.where}: `inv {' '.join(call.args)}`: bad option value ({exc})"]
    if not [ctx for ctx in parsed if ctx.name]:
        core = parsed[0] if parsed else None
        if core is None or not any(arg.got_value for arg in core.args.values()):
            return [f"{call.where}: `inv {' '.join(call.args)}` names no task"]
    return []
