"""Lienlac schedules package."""
