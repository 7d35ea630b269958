"""Alembic's revisions of the schema, in `versions/`.

HEAD names the newest. The daemon compares a database's revision with it and starts the
migration child only when they differ, without loading Alembic's script machinery (11 MiB it
would keep for its lifetime); tests/sqlite/test_migrations.py holds HEAD equal to the one head
Alembic's ScriptDirectory reads from the version files.
"""

HEAD = "0019"
