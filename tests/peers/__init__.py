"""Peers' published test data (tests/data/peers) and an independent re-implementation of their
bucketing (reference.py), against which trafficsplit's hashing modes are checked."""
