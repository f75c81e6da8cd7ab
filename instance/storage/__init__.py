"""Storage: models, the engine/session factory, migrations and named queries."""
