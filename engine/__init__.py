"""Formwork engine: tenant config → checked model → database schema → records (no web imports)."""

from .plugins import hookimpl  # noqa: E402

__all__ = ["hookimpl"]
