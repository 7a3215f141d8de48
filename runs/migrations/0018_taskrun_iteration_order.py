from django.db import migrations, models


class Migration(migrations.Migration):
    """A for-each's iterations in input order from an index: runs/get pages them, 100 at a time,
    and the run page's panel shows the first ones, without sorting a loop of 10,000 each time.
    (run, for_each_key, is_current) stays: it counts the current ones from the index alone."""

    dependencies = [("runs", "0017_taskrun_dispatched_at")]

    operations = [
        migrations.AddIndex(
            model_name="taskrun",
            index=models.Index(fields=["run", "for_each_key", "iteration", "id"], name="taskrun_iteration_order"),
        ),
    ]
