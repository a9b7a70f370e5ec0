"""HTTP: OneRoster import as a background job (filled in by the OneRoster work)."""
blueprints = ()
