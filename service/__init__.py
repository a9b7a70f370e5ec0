"""Lienlac service core: app factory, configuration, database, accounts, roster, permissions."""
