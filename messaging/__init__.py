"""Lienlac messaging package."""
