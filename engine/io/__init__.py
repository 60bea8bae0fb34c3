"""Import and export of records (CSV, JSON) through the records service."""
