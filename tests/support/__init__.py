"""Real parts of the test bed (TESTBED.md): each module starts one of them for a test session."""
