# A job may now have several triggers (JobSettings.triggers): TriggerState gets its own id and a
# position (0 for the schedule, trigger or continuous setting, i for triggers[i]) instead of the
# job as its primary key, and what job-completion triggers and SQL conditions keep. Swapping a
# primary key in place differs between SQLite and Postgres, so the rows move to a new table
# (each as position 0), which then takes the old one's name. TriggerDecision gains the position.

import django.db.models.deletion
from django.db import migrations, models

import jobs.spec.documents

STATE_FIELDS = ("job_id", "kind", "config", "paused", "enabled_at", "next_check_at", "last_slot", "last_fired_at",
                "last_run_id", "arrival", "snapshot", "updated_tables", "seen_write_id", "failures", "last_error",
                "checked_at")


def copy_states(apps, schema_editor):
    old, new = apps.get_model("runs", "TriggerState"), apps.get_model("runs", "TriggerStateNew")
    rows = old.objects.using(schema_editor.connection.alias).values(*STATE_FIELDS).order_by("job_id")
    new.objects.using(schema_editor.connection.alias).bulk_create(
        [new(position=0, **row) for row in rows.iterator()], batch_size=500)


def copy_states_back(apps, schema_editor):
    """Going back keeps one trigger per job: its position 0 (the setting older code knew)."""
    old, new = apps.get_model("runs", "TriggerState"), apps.get_model("runs", "TriggerStateNew")
    rows = new.objects.using(schema_editor.connection.alias).filter(position=0).values(*STATE_FIELDS)
    old.objects.using(schema_editor.connection.alias).bulk_create([old(**row) for row in rows.iterator()],
                                                                  batch_size=500)


JSON = jobs.spec.documents.ReadableJSONDecoder


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0007_job_permissions'),
        ('runs', '0014_attempt_usage'),
    ]

    operations = [
        migrations.CreateModel(
            name='TriggerStateNew',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveSmallIntegerField(default=0)),
                ('kind', models.CharField(choices=[('schedule', 'Schedule'), ('periodic', 'Periodic'), ('file_arrival', 'File Arrival'), ('table_update', 'Table Update'), ('continuous', 'Continuous'), ('job_completion', 'Job Completion')], max_length=20)),
                ('config', models.JSONField(decoder=JSON)),
                ('paused', models.BooleanField(default=False)),
                ('enabled_at', models.DateTimeField()),
                ('next_check_at', models.DateTimeField(blank=True, null=True)),
                ('last_slot', models.DateTimeField(blank=True, null=True)),
                ('last_fired_at', models.DateTimeField(blank=True, null=True)),
                ('arrival', models.JSONField(blank=True, decoder=JSON, default=dict)),
                ('snapshot', models.JSONField(blank=True, decoder=JSON, null=True)),
                ('updated_tables', models.JSONField(blank=True, decoder=JSON, default=dict)),
                ('seen_write_id', models.BigIntegerField(default=0)),
                ('failures', models.PositiveIntegerField(default=0)),
                ('last_error', models.TextField(blank=True, default='')),
                ('checked_at', models.DateTimeField(blank=True, null=True)),
                ('completions', models.JSONField(blank=True, decoder=JSON, default=dict)),
                ('condition_state', models.JSONField(blank=True, decoder=JSON, null=True)),
                ('pending_fire', models.JSONField(blank=True, decoder=JSON, null=True)),
                ('version', models.BigIntegerField(default=0)),
                ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='trigger_states', to='jobs.job')),
                ('last_run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='runs.run')),
            ],
            options={'db_table': 'runs_triggerstate_new'},
        ),
        migrations.RunPython(copy_states, copy_states_back),
        migrations.DeleteModel(name='TriggerState'),
        migrations.RenameModel(old_name='TriggerStateNew', new_name='TriggerState'),
        migrations.AlterModelTable(name='triggerstate', table='jobs_triggerstate'),
        # Named only now: index and constraint names are unique per database on Postgres.
        migrations.AddIndex(
            model_name='triggerstate',
            index=models.Index(fields=['paused', 'next_check_at'], name='trigger_due'),
        ),
        migrations.AddConstraint(
            model_name='triggerstate',
            constraint=models.UniqueConstraint(fields=('job', 'position'), name='one_trigger_state_per_position'),
        ),
        migrations.AddField(
            model_name='triggerdecision',
            name='position',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='triggerdecision',
            name='kind',
            field=models.CharField(choices=[('fired', 'Fired'), ('skipped', 'Skipped'), ('refused', 'Refused'), ('paused', 'Paused'), ('resumed', 'Resumed'), ('not_triggered', 'Not Triggered'), ('failed', 'Failed')], max_length=20),
        ),
    ]
