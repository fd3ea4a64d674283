"""The one loader of the shell scripts that run on hosts.

A package keeps its scripts as `.sh` files in a `scripts/` folder next to its modules
(package data). A script may need libraries: `.sh` files of functions, from its own package
or another one (the deploy lock's `fabfile.deploy:lock` serves deploy, backup and cutover),
which are put in front of its text, each once, in the order named. Each runs as
`sh -c BODY NAME ARG...`: the text is constant and every value arrives as a positional
argument, so nothing is ever spliced into shell source. `tests/test_shellcheck.py` lints
every file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources

from fabfile.remote import Step, script


@cache
def read(package: str, name: str) -> str:
    """The text of `<package>/scripts/<name>.sh`."""
    return resources.files(package).joinpath("scripts", f"{name}.sh").read_text("utf-8")


def _source(ref: str, package: str) -> tuple[str, str]:
    """`lib` (in `package`) or `fabfile.deploy:lock` (anywhere) -> (package, name)."""
    where, _, name = ref.rpartition(":")
    return (where or package, name)


@cache
def _compose(package: str, name: str, libraries: tuple[str, ...]) -> str:
    parts = [read(*_source(ref, package)) for ref in dict.fromkeys(libraries)]
    return "\n".join([*parts, read(package, name)])


def body(package: str, name: str, libraries: Sequence[str] = ()) -> str:
    """The text `sh -c` runs: the libraries' texts, then the script's."""
    return _compose(package, name, tuple(libraries))


class Scripts:
    """The scripts of one package, each with the libraries it needs."""

    def __init__(self, package: str, needs: Mapping[str, Sequence[str]]) -> None:
        self.package = package
        self.needs = {name: tuple(libs) for name, libs in needs.items()}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.needs)

    def body(self, name: str) -> str:
        if name not in self.needs:
            raise KeyError(name)
        return body(self.package, name, self.needs[name])

    def step(self, title: str, name: str, *args: str, stdin: bytes | None = None,
             timeout: float | None = None, check: bool = True) -> Step:
        """A step running `scripts/<name>.sh` with `args`."""
        return script(title, self.body(name), *args, stdin=stdin, timeout=timeout, check=check)

    def shown(self, argv: Sequence[str]) -> list[str]:
        """`argv` with every script body replaced by `<name.sh>`: readable, stable for goldens."""
        names = {self.body(n): f"<{n}.sh>" for n in self.needs}
        return [names.get(arg, arg) for arg in argv]
