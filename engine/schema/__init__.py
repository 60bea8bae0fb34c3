"""Database schema: SQLAlchemy Core tables built from the model, and the data-aware plan/migrate."""
