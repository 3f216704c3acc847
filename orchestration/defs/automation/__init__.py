import dagster as dg

from .jobs import daily_build_job
from .schedules import all_rows_test_schedule, daily_build_schedule
from .sensors import inbox_sensor

defs = dg.Definitions(
    jobs=[daily_build_job], schedules=[daily_build_schedule, all_rows_test_schedule], sensors=[inbox_sensor]
)
