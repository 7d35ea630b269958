"""The SQLite store (pipeline/sqlite/): its migrations against its models."""
