"""Shipped gate policies (YAML)."""
