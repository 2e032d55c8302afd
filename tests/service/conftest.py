"""Service tests: use cases on a real database (see tests/conftest.py for which backends),
called directly with a session and ``now``, as views, jobs and the CLI call them."""
