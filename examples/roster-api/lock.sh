#!/usr/bin/env sh
# Regenerates requirements.lock from requirements.in: every package pinned with its hashes,
# resolved for CPython >= 3.11 on any platform (uv's universal resolution), so the same lock
# installs on the test bed's Debian python3 (3.11) and on python:3.12-slim.
# Needs uv (`pip install uv`). Extra arguments go to uv, e.g. --upgrade-package fastapi.
set -eu
cd "$(dirname "$0")"
exec uv pip compile --universal --python-version 3.11 --generate-hashes \
  requirements.in -o requirements.lock "$@"
