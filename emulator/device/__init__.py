"""A virtual device: identity, profile, tree, operating environments and local applications."""
