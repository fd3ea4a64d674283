"""SQLite -> PostgreSQL migration: preflight, schema plan, parallel COPY, verification, report.

The engine's entry points are `engine.migrate` and `engine.verify`; everything else is a
small module named for the one thing it does. `plan`, `ddl`, `typemap` and `render` are pure
(schema facts in, data or SQL text out) and tested as data.
"""
