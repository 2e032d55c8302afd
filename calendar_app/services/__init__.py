"""Use cases: each takes a Session and its collaborators and owns the one commit."""
