"""The records service: the only read and write path for entity records."""
