import os

import dagster as dg

from .jobs import daily_build_job

DAILY_BUILD_CRON = os.environ.get("CHAT_ANALYTICS_DAILY_CRON", "0 2 * * *")

daily_build_schedule = dg.ScheduleDefinition(
    name="daily_build_schedule",
    job=daily_build_job,
    cron_schedule=DAILY_BUILD_CRON,
    execution_timezone="UTC",
    description="The daily build, 02:00 UTC unless CHAT_ANALYTICS_DAILY_CRON says otherwise.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
