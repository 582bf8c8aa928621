"""Training of the learned engines (needs the ``[train]`` extra: torch)."""
