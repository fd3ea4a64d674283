"""Operational checks: TLS certificates (`certs`) and the preflight of hosts and services
(`doctor`). Facts are gathered once; judging them is pure and tested as data."""
