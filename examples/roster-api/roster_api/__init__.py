"""The roster API: volunteers (people), events and who is assigned to what.

Kept free of imports so `python -m roster_api.healthcheck` starts in milliseconds.
"""
