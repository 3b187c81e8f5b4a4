"""The jobs, the release sensor and the daily update (`dagster_project.automation` builds them;
their intervals and default status come from the validated settings)."""

import dagster as dg

from archs4.settings import Settings
from dagster_project.automation import JOBS, build_daily_update, build_release_sensor


@dg.definitions
def automation() -> dg.Definitions:
    settings = Settings.from_env()
    return dg.Definitions(
        jobs=JOBS,
        sensors=[build_release_sensor(settings)],
        schedules=[build_daily_update(settings)],
    )
