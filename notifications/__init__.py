"""Lienlac notifications package."""
