"""Rows that are written once and never changed: job events, prompt versions, ledger entries.

Shared by both apps and owned by neither, so billing's models need nothing from `videos`.

The ORM refuses updates and deletes, and a database trigger refuses UPDATE (and, on PostgreSQL,
DELETE) from any other client too. SQLite keeps DELETE open because Django's test flush empties
tables with DELETE; PostgreSQL flushes with TRUNCATE, which row triggers do not see.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


class AppendOnlyError(Exception):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(f"{self.model.__name__} rows are never updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{self.model.__name__} rows are never deleted.")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are never updated.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{type(self).__name__} rows are never deleted.")


def _trigger_sql(vendor: str, table: str) -> tuple[list[str], list[str]]:
    if vendor == "sqlite":
        return (
            [
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;"
            ],
            [f"DROP TRIGGER IF EXISTS {table}_no_update;"],
        )
    if vendor == "postgresql":
        return (
            [
                f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
                f"BEGIN RAISE EXCEPTION '{table} is append-only'; END; $$ LANGUAGE plpgsql;",
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only();",
            ],
            [
                f"DROP TRIGGER IF EXISTS {table}_no_change ON {table};",
                f"DROP FUNCTION IF EXISTS {table}_append_only();",
            ],
        )
    return [], []


def append_only_trigger(table: str) -> migrations.RunPython:
    """A migration operation that installs the database-level guard for `table`."""

    def forwards(apps: Any, schema_editor: Any) -> None:
        for statement in _trigger_sql(schema_editor.connection.vendor, table)[0]:
            schema_editor.execute(statement)

    def backwards(apps: Any, schema_editor: Any) -> None:
        for statement in _trigger_sql(schema_editor.connection.vendor, table)[1]:
            schema_editor.execute(statement)

    return migrations.RunPython(forwards, backwards)
