"""Pure domain logic: no Flask, no database session, no HTTP, no twilio.

Everything here takes plain values (and ``now`` where time matters) and returns plain
values, so it can be tested without any running component.
"""
