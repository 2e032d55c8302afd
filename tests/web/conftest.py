"""Web tests: pages and the JSON API through Flask's test client, signed in as the people
of tests/support/world.py (or the demo), with the app's clock frozen at NOW."""
