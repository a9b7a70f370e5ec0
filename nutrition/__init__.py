"""Lienlac nutrition package."""
