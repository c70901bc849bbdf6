"""Reading one day's raw JSON lines for cleaning.

Spark's JSON source parses a line about twice as fast as ``from_json`` over the text source (it hands
Jackson the line's bytes; ``from_json`` decodes them to characters first), but it keeps the raw line only
for lines it cannot parse, and it reads some lines as zero or several rows (blank lines, arrays). So:

* :func:`count_lines` counts the input lines and the *irregular* ones, one pass over the text;
* with no irregular line, :func:`read_json_fields` parses the day through the JSON source: one row per
  line, in the text source's order, so the row numbers are the text path's; the raw line of a row that
  is quarantined after parsing is fetched back by its row number (:func:`with_raw_lines`);
* otherwise cleaning parses the text lines one by one (``clean.with_parsed_fields``), as before.

Both paths give the same outcome for every line (``tests/etl/test_raw_lines.py``).
"""

from __future__ import annotations

from typing import Optional, Tuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys_spark import privacy
from recsys_spark import schemas as S
from recsys_spark.etl.clean import _CORRUPT, _ROW_ID, MALFORMED_JSON, RAW_FIELDS_SCHEMA

# A line that the JSON source reads exactly as the text path does: valid UTF-8, and an object after any
# spaces (the text path's test for an object: trim(value) starts with "{"). Such a line is one row, parsed
# or corrupt. Blank lines (no row), arrays (a row per element), other roots and other leading whitespace
# (the text path calls them malformed, the JSON source may parse them) are irregular.
_REGULAR = r"^ *\{"


def irregular_line(value: Column) -> Column:
    return ~value.rlike(_REGULAR) | ~F.is_valid_utf8(value)


def count_lines(text_df: DataFrame) -> Tuple[int, int]:
    """(lines, irregular lines) of the text source's ``value`` column, in one pass."""
    row = text_df.agg(F.count(F.lit(1)), F.count_if(irregular_line(F.col("value")))).first()
    return int(row[0]), int(row[1] or 0)


def read_json_fields(spark, path: str) -> DataFrame:
    """Every line of ``path`` parsed by the JSON source, as the text path's parsed columns: ``_row_id``,
    ``value`` (the raw line, only where it is malformed), ``_is_malformed`` and one string column per raw
    field. Only for input without irregular lines (:func:`count_lines`)."""
    df = (spark.read.schema(RAW_FIELDS_SCHEMA).option("mode", "PERMISSIVE")
          .option("columnNameOfCorruptRecord", _CORRUPT).json(path))
    return df.select(F.monotonically_increasing_id().alias(_ROW_ID), F.col(_CORRUPT).alias("value"),
                     F.col(_CORRUPT).isNotNull().alias("_is_malformed"), *S.RAW_FIELDS)


# Up to this many rows needing their line, they travel to the text scan as a broadcast table (~100 bytes a
# row); more (a day where most rows break a rule) join by a shuffle of the text instead.
MAX_BROADCAST_ROWS = 2_000_000


def with_raw_lines(spark, path: str, quarantined_df: DataFrame, key: Optional[bytes],
                   broadcast: bool = True) -> DataFrame:
    """The quarantined rows of a day read by :func:`read_json_fields`, with the raw line of each row that
    was quarantined after parsing (encrypted when ``key``), fetched from the text by row number.

    ``quarantined_df`` has ``_row_id`` and the quarantine table's columns; ``broadcast``: whether the rows
    needing a line are few enough (:data:`MAX_BROADCAST_ROWS`) to be broadcast. A fetched line that does not
    parse to the row's event id (the input changed while cleaning) fails the job; a row without a line is
    left out, and the count check after writing fails the job.
    """
    malformed = F.col(S.REASON) == MALFORMED_JSON
    needing = quarantined_df.filter(~malformed).drop(S.RAW_VALUE, S.RAW_VALUE_ENCRYPTED)
    lines = spark.read.text(path).select(F.monotonically_increasing_id().alias(_ROW_ID), F.col("value"))
    fetched = lines.join(F.broadcast(needing) if broadcast else needing, _ROW_ID)
    same_event = F.from_json(F.col("value"), RAW_FIELDS_SCHEMA)[S.EVENT_ID].eqNullSafe(F.col(S.EVENT_ID))
    line = F.when(same_event, F.col("value")).otherwise(F.raise_error(F.concat(
        F.lit(f"the raw lines of {path} changed while clean_events ran (row "), F.col(_ROW_ID).cast("string"),
        F.lit(" no longer holds its event); re-run clean_events for this day")))).alias(S.RAW_VALUE)
    if key:
        filled = privacy.drop_secrets(privacy.with_secrets(fetched.select("*", line), key)
                                      .withColumns(privacy.encrypted_instead(S.RAW_VALUE, S.RAW_VALUE_ENCRYPTED)))
    else:
        filled = fetched.select("*", line, F.lit(None).cast("binary").alias(S.RAW_VALUE_ENCRYPTED))
    return quarantined_df.filter(malformed).unionByName(filled.drop("value"))
