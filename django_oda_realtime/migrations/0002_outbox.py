from django.db import migrations, models

# PostgreSQL: commit order (docs/design.md#outbox). A deferred constraint trigger runs at COMMIT:
# it takes one transaction-level advisory lock (held until the commit is visible), numbers the
# transaction's rows from a sequence and NOTIFYs the relay (delivered at commit). Numbers are
# therefore taken in commit order, and a row is visible only once every smaller number is.
COMMIT_ORDER_KEY = 0x6F64615F6F627831  # "oda_obx1"; django_oda_realtime/outbox.py has the same constant

FORWARD = f"""
CREATE SEQUENCE realtime_outbox_commit_seq;
CREATE FUNCTION realtime_outbox_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({COMMIT_ORDER_KEY});
    UPDATE realtime_outbox SET seq = nextval('realtime_outbox_commit_seq') WHERE id = NEW.id;
    PERFORM pg_notify('realtime_outbox', '');
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER realtime_outbox_at_commit AFTER INSERT ON realtime_outbox
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION realtime_outbox_at_commit();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS realtime_outbox_at_commit ON realtime_outbox;
DROP FUNCTION IF EXISTS realtime_outbox_at_commit();
DROP SEQUENCE IF EXISTS realtime_outbox_commit_seq;
"""


def commit_order(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def no_commit_order(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):

    dependencies = [
        ('realtime', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='OutboxEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(max_length=200)),
                ('event_id', models.CharField(max_length=32)),
                ('rooms', models.JSONField()),
                ('envelope', models.TextField()),
                ('created_at', models.DateTimeField()),
                ('seq', models.BigIntegerField(blank=True, null=True)),
                ('published_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'db_table': 'realtime_outbox',
                'indexes': [models.Index(condition=models.Q(('published_at__isnull', True)), fields=['seq', 'id'], name='realtime_outbox_pending'), models.Index(fields=['created_at'], name='realtime_outbox_created')],
            },
        ),
        migrations.RunPython(commit_order, no_commit_order),
    ]
