# The Usage page sums, per job, the runs created in a range (runs/usage_pages.py): an index on
# created_at that also holds the columns it reads answers it from the index alone, without a
# lookup of each run's row (at 1,000,000 task runs, 90 days: see bench/usage_page_scale.py). It
# replaces the plain created_at index, whose every use it serves.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0015_one_trigger_state_per_trigger"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="run", name="run_created"),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(fields=["created_at", "job", "cost", "cpu_seconds", "started_at", "ended_at"],
                               name="run_created_usage"),
        ),
    ]
