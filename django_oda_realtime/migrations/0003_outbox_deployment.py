from django.db import migrations, models

# Each row names the channel-layer prefix of the process that stored it; a relay sends only its own
# deployment's rows and those stored before this column (null) (docs/design.md#outbox).


class Migration(migrations.Migration):

    dependencies = [
        ('realtime', '0002_outbox'),
    ]

    operations = [
        migrations.AddField(
            model_name='outboxevent',
            name='deployment',
            field=models.TextField(blank=True, null=True),
        ),
    ]
