"""The ``sneaky`` command line (and, later, the Python SDK)."""
