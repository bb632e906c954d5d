"""Helpers every area of the package shares, one floor below them all: unit keys and
argument checks. Nothing here imports another module of the package but errors."""
