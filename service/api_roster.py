"""HTTP: roster administration (filled in by the roster admin work)."""
blueprints = ()
