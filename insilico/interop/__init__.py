"""Bridges to other frameworks (optional dependencies, imported lazily)."""
