"""Helpers every area of the package shares, one floor below them all: unit keys, argument
checks and files replaced whole. Nothing here imports another module of the package but
errors."""
