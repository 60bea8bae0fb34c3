"""Demo data generation."""
