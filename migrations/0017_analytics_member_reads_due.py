"""Member counts read soon after a chat is first seen or the bot is added: the chats due a reading."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('plugboard', '0016_analytics_content')]

    initial = False

    operations = [
        ops.AddField(
            model_name='AnalyticsMemberChat',
            name='due_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='AnalyticsMemberChat',
            index=Index(fields=['due_at']),
        ),
    ]
