from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("runs", "0016_run_created_covers_usage")]

    operations = [
        migrations.AddField(
            model_name="taskrun",
            name="dispatched_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
