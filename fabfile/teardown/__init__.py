"""`inv remove`: take the app off its hosts (`run`, with `scripts/remove.sh` on each host)."""
