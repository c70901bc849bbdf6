"""One row per ``event_id`` across the days of a build window, and a count of every row left out.

``clean_events`` makes ids unique within a day. Across days a later row with an id already seen is left
out of the tables, counted by reason: ``redelivered`` (a copy of the first event: a re-sent log) or
``reused_event_id`` (another event under an id an earlier day used: a producer bug worth knowing about).
"""

from __future__ import annotations

from typing import Dict

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_spark import schemas as S

REDELIVERED, REUSED_EVENT_ID = "redelivered", "reused_event_id"
DROP_REASON = "_drop_reason"
_CONTENT = [S.USER_ID, S.ITEM_ID, S.EVENT_TYPE, S.RATING, S.EVENT_TS, S.SESSION_ID]


def flag_later_deliveries(events_df: DataFrame) -> DataFrame:
    """Adds ``_drop_reason``: NULL for the earliest delivery of each ``event_id`` (by day, then event time),
    else ``redelivered`` or ``reused_event_id``."""
    first = Window.partitionBy(S.EVENT_ID).orderBy(F.col(S.DS), F.col(S.EVENT_TS))
    differs = [~F.col(c).eqNullSafe(F.first(c).over(first)) for c in _CONTENT if c in events_df.columns]
    reason = (F.when(F.row_number().over(first) == 1, F.lit(None).cast("string"))
              .when(_any(differs), REUSED_EVENT_ID).otherwise(REDELIVERED))
    return events_df.withColumn(DROP_REASON, reason)


def kept(flagged_df: DataFrame) -> DataFrame:
    return flagged_df.filter(F.col(DROP_REASON).isNull()).drop(DROP_REASON)


def dropped_by_reason(flagged_df: DataFrame) -> Dict[str, int]:
    """{reason: rows} of the rows left out (both reasons always present)."""
    counts = {r[DROP_REASON]: r["count"] for r in flagged_df.filter(F.col(DROP_REASON).isNotNull())
              .groupBy(DROP_REASON).count().collect()}
    return {REDELIVERED: counts.get(REDELIVERED, 0), REUSED_EVENT_ID: counts.get(REUSED_EVENT_ID, 0)}


def _any(conditions):
    out = F.lit(False)
    for condition in conditions:
        out = out | condition
    return out
