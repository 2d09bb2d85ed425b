"""app/analytics/personal.py: its list holds every analytics table with a person's Telegram id, a
table added later too, so `analytics forget-user` (tests/test_analytics_cli.py) forgets it."""

from __future__ import annotations

from app.analytics.personal import PERSONAL
from tests.analytics.test_content import analytics_models


def test_every_analytics_table_with_a_user_id_is_personal():
    with_ids = {model for model in analytics_models() if "user_id" in model._meta.fields_map}
    assert with_ids == set(PERSONAL)
    assert len(PERSONAL) == 5
