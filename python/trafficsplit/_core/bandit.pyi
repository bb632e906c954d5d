"""trafficsplit._core.bandit: bandit policies."""
