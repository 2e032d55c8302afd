"""The load test of issue #12 (``make loadtest``): locust against gunicorn and PostgreSQL.

Not part of the tests and not run in CI: it seeds a county-like database of its own, drives
the production server configuration with a realistic mix of users, and writes its figures
to the "Load test" section of docs/benchmarks.md.
"""
