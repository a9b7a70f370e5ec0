"""Lienlac contactbook package."""
