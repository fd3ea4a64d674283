"""Invoke namespaces, one module each, composed in the root `tasks.py`."""
