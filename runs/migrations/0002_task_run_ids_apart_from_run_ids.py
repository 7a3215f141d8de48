"""Task run ids start at 10^12 so a task run's run_id never equals a job run's.

The Jobs API takes either kind in one `run_id` parameter (runs/get, runs/cancel, runs/export),
as Databricks does with its single id space; two counters starting at 1 would collide.
"""

from django.db import migrations

FIRST_TASK_RUN_ID = 10**12


def start_task_run_ids_high(apps, schema_editor):
    connection = schema_editor.connection
    table = apps.get_model("runs", "TaskRun")._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM " + connection.ops.quote_name(table))
            highest = max(cursor.fetchone()[0], FIRST_TASK_RUN_ID - 1)
            cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
            cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, highest])
        elif connection.vendor == "postgresql":
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), GREATEST(%s, (SELECT COALESCE(MAX(id), 0) FROM "
                + connection.ops.quote_name(table) + ")))",
                [table, FIRST_TASK_RUN_ID - 1],
            )


class Migration(migrations.Migration):
    dependencies = [("runs", "0001_initial")]
    operations = [migrations.RunPython(start_task_run_ids_high, migrations.RunPython.noop)]
