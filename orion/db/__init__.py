"""Schema and migrations: versioned SQL files applied in order by `orion db migrate`."""
