"""docs/quickstart.md's "When something goes wrong" quotes the tool's own messages: each
quoted message, once the page's example values are cut out, is made of text the code says
(`fabfile/`), so a reworded message fails here until the page follows."""

from __future__ import annotations

import re

from tests.helpers import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "quickstart.md"
EXAMPLE_VALUES = ("203.0.113.10:22", "~/.ssh/known_hosts", "~/.ssh/roster_deploy",
                  "deploy@203.0.113.10:22", "deploy@", "PROD_DATABASE_URL", ".env.prod",
                  "ghcr.io/", "ghcr.io", "acme-deploy", "GHCR_TOKEN", "TAG", "prod", "...",
                  "2.20", "docker-compose=1.29", "(", ")",
                  "expected ")  # how configuration errors introduce what they expected
"""The page's example values (and the punctuation around them): cut out before comparing."""


def code_text() -> str:
    """Every string the code can say, adjacent literals joined as Python joins them."""
    parts = [p.read_text() for p in (PROJECT_ROOT / "fabfile").rglob("*") if p.suffix in
             (".py", ".sh")]
    return re.sub(r"\"\s*\n\s*(?:f|rf|fr)?\"", "", "\n".join(parts))


def quoted_messages() -> list[str]:
    section = DOC.read_text().split("## When something goes wrong", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ")]
    return [m for row in rows[1:] for m in re.findall(r"`([^`]+)`", row[2])]


def fragments(message: str) -> list[str]:
    pattern = "|".join(re.escape(v) for v in sorted(EXAMPLE_VALUES, key=len, reverse=True))
    return [f.strip(" :,") for f in re.split(pattern, message) if len(f.strip(" :,")) >= 12]


def test_every_quoted_message_is_the_tools_own() -> None:
    messages = quoted_messages()
    assert len(messages) >= 10, messages
    code = code_text()
    missing = [(m, f) for m in messages for f in fragments(m) if f not in code]
    assert not missing, f"quoted in the quickstart, not said by the code: {missing}"
