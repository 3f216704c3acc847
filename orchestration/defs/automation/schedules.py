import dagster as dg

from orchestration.settings import settings

from .jobs import daily_build_job

daily_build_schedule = dg.ScheduleDefinition(
    name="daily_build_schedule",
    job=daily_build_job,
    cron_schedule=settings.daily_cron,
    execution_timezone="UTC",
    description="The daily build, 02:00 UTC unless CHAT_ANALYTICS_DAILY_CRON says otherwise.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
