"""Django's SQLite backend with writers that take turns (the embedded and test profiles); see `base`."""
