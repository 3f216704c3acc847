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

all_rows_test_schedule = dg.ScheduleDefinition(
    name="all_rows_test_schedule",
    job=daily_build_job,
    cron_schedule=settings.all_rows_test_cron,
    execution_timezone="UTC",
    run_config={"ops": {"dbt_models": {"config": {"test_all_rows": True}}}},
    description=(
        "The build with every dbt test run on every row (a daily build tests the rows it "
        "wrote): Sundays 04:00 UTC unless CHAT_ANALYTICS_ALL_ROWS_TEST_CRON says otherwise."
    ),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
