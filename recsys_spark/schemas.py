"""The one place that names the lake's tables and columns and defines their schemas.

Lake layout: ``<lake>/<table>/ds=YYYY-MM-DD/`` (Parquet, or JSON lines for raw inputs). Everything else
imports the constants below instead of spelling names out.
"""

from __future__ import annotations

from pyspark.sql import types as T

# ---- tables -------------------------------------------------------------------------------------------
RAW_EVENTS = "raw_events"
RAW_ITEMS = "raw_items"
EVENTS_CLEAN = "events_clean"
EVENTS_QUARANTINE = "events_quarantine"
USER_VOCAB = "user_vocab"
ITEM_VOCAB = "item_vocab"
INTERACTIONS = "interactions"
TRAIN = "train"
VALIDATION = "validation"
TEST = "test"
GRAPH_EDGES = "graph_edges"
GRAPH_DEGREES = "graph_degrees"
ITEM_COOCCURRENCE = "item_cooccurrence"
SEQUENCES = "sequences"
ITEM_FEATURES = "item_features"
RAW_USERS = "raw_users"
USER_PSEUDONYMS = "user_pseudonyms"  # pseudonym -> raw user id, only with privacy.write_id_map
METRICS = "metrics"
RECOMMENDATIONS = "recommendations"
GATE_DECISIONS = "gate_decisions"  # <lake>/gate_decisions/ds=<ds>/decision.json
REPORTS = "_reports"


def model_table(model: str) -> str:
    """Where a model's exported artifacts live: ``<lake>/models/<model>/ds=<ds>/``."""
    return f"models/{model}"


# ---- columns ------------------------------------------------------------------------------------------
EVENT_ID = "event_id"
USER_ID = "user_id"
ITEM_ID = "item_id"
EVENT_TYPE = "event_type"
RATING = "rating"
TS = "ts"
SESSION_ID = "session_id"
EVENT_TS = "event_ts"
DS = "ds"
RAW_VALUE = "raw_value"
RAW_VALUE_ENCRYPTED = "raw_value_encrypted"  # AES-GCM of the raw line when user ids are pseudonymised
RAW_USER_ID = "raw_user_id"
REASON = "reason"
AVAILABLE = "available"
BECAUSE = "because"
NEW_ITEM = "new_item"
EVENT_TYPES = "event_types"
USER_IDX = "user_idx"
ITEM_IDX = "item_idx"
FIRST_DS = "first_ds"
WEIGHT = "weight"
EVENT_COUNT = "event_count"
LAST_RATING = "last_rating"
FIRST_TS = "first_ts"
LAST_TS = "last_ts"
TIE_BREAK = "tie_break"  # seeded hash of (user id, item id): orders a user's same-time events
SPLIT = "split"
EMBEDDING = "embedding"
RANK = "rank"
SCORE = "score"
MODEL = "model"
MODEL_VERSION = "model_version"
METRIC = "metric"
K = "k"
VALUE = "value"
N_USERS = "n_users"
SLICE = "slice"

SPLIT_TRAIN, SPLIT_VALIDATION, SPLIT_TEST = "train", "validation", "test"
HISTORY = "history"
HISTORY_LENGTH = "history_length"
VALIDATION_ITEMS = "validation_items"
TEST_ITEMS = "test_items"
NODE_TYPE = "node_type"
NODE_IDX = "node_idx"
DEGREE = "degree"
NEIGHBOR_IDX = "neighbor_idx"
COUNT = "count"
TITLE = "title"
CATEGORY = "category"
CATEGORIES = "categories"
TAGS = "tags"
PRICE = "price"
CATEGORY_MULTI_HOT = "category_multi_hot"
TAG_IDS = "tag_ids"
TITLE_TFIDF_INDICES = "title_tfidf_indices"
TITLE_TFIDF_VALUES = "title_tfidf_values"
TRAIN_USERS = "train_users"
PAD_ITEM = -1  # left padding of sequences

# ---- schemas ------------------------------------------------------------------------------------------
RAW_FIELDS = (EVENT_ID, USER_ID, ITEM_ID, EVENT_TYPE, RATING, TS, SESSION_ID)
REQUIRED_RAW_FIELDS = (EVENT_ID, USER_ID, ITEM_ID, EVENT_TYPE, TS)

# Every raw field is read as a string so that nothing is lost before validation: a number, an object or
# a string all survive as text, and typing happens in one visible place (etl.clean).
RAW_EVENT_SCHEMA = T.StructType([T.StructField(name, T.StringType(), True) for name in RAW_FIELDS])

EVENTS_CLEAN_SCHEMA = T.StructType(
    [
        T.StructField(EVENT_ID, T.StringType(), False),
        T.StructField(USER_ID, T.StringType(), False),
        T.StructField(ITEM_ID, T.StringType(), False),
        T.StructField(EVENT_TYPE, T.StringType(), False),
        T.StructField(RATING, T.DoubleType(), True),
        T.StructField(EVENT_TS, T.TimestampType(), False),
        T.StructField(SESSION_ID, T.StringType(), True),
    ]
)

EVENTS_QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField(RAW_VALUE, T.StringType(), True),
        T.StructField(RAW_VALUE_ENCRYPTED, T.BinaryType(), True),
        T.StructField(REASON, T.StringType(), False),
    ]
)

VOCAB_SCHEMAS = {
    USER_VOCAB: T.StructType(
        [
            T.StructField(USER_ID, T.StringType(), False),
            T.StructField(USER_IDX, T.IntegerType(), False),
            T.StructField(FIRST_DS, T.StringType(), False),
        ]
    ),
    ITEM_VOCAB: T.StructType(
        [
            T.StructField(ITEM_ID, T.StringType(), False),
            T.StructField(ITEM_IDX, T.IntegerType(), False),
            T.StructField(FIRST_DS, T.StringType(), False),
        ]
    ),
}

INTERACTIONS_SCHEMA = T.StructType(
    [
        T.StructField(USER_IDX, T.IntegerType(), False),
        T.StructField(ITEM_IDX, T.IntegerType(), False),
        T.StructField(WEIGHT, T.FloatType(), False),
        T.StructField(EVENT_COUNT, T.IntegerType(), False),
        T.StructField(LAST_RATING, T.DoubleType(), True),
        T.StructField(FIRST_TS, T.TimestampType(), False),
        T.StructField(LAST_TS, T.TimestampType(), False),
        T.StructField(TIE_BREAK, T.LongType(), False),
        T.StructField(SPLIT, T.StringType(), False),
        T.StructField(EVENT_TYPES, T.ArrayType(T.StringType(), False), False),  # the pair's event types, sorted
    ]
)

# The train/validation/test tables hold what a trainer reads: no timestamps, narrow numeric types;
# ``rating`` is the pair's latest explicit rating (NULL for implicit-only pairs).
PAIRS_SCHEMA = T.StructType(
    [
        T.StructField(USER_IDX, T.IntegerType(), False),
        T.StructField(ITEM_IDX, T.IntegerType(), False),
        T.StructField(WEIGHT, T.FloatType(), False),
        T.StructField(RATING, T.FloatType(), True),
    ]
)

GRAPH_EDGES_SCHEMA = T.StructType(
    [
        T.StructField(USER_IDX, T.IntegerType(), False),
        T.StructField(ITEM_IDX, T.IntegerType(), False),
        T.StructField(WEIGHT, T.FloatType(), False),
    ]
)

RECOMMENDATIONS_SCHEMA = T.StructType(
    [
        T.StructField(USER_ID, T.StringType(), False),
        T.StructField(ITEM_ID, T.StringType(), False),
        T.StructField(RANK, T.IntegerType(), False),
        T.StructField(SCORE, T.FloatType(), False),
        T.StructField(MODEL, T.StringType(), False),
        T.StructField(MODEL_VERSION, T.StringType(), False),
        T.StructField(REASON, T.StringType(), False),  # model, content_fallback or popularity_fallback
        T.StructField(BECAUSE, T.ArrayType(T.StringType(), False), False),  # up to 3 supporting history items
        T.StructField(NEW_ITEM, T.BooleanType(), False),  # no interaction up to ds: recommended by its content
    ]
)

# One row per (model, model_version, split, slice, metric, k).
METRICS_SCHEMA = T.StructType(
    [
        T.StructField(MODEL, T.StringType(), False),
        T.StructField(MODEL_VERSION, T.StringType(), False),
        T.StructField(SPLIT, T.StringType(), False),
        T.StructField(SLICE, T.StringType(), False),
        T.StructField(METRIC, T.StringType(), False),
        T.StructField(K, T.IntegerType(), False),
        T.StructField(VALUE, T.DoubleType(), False),
        T.StructField(N_USERS, T.LongType(), False),
    ]
)

EMBEDDINGS_SCHEMAS = {
    "user": T.StructType(
        [
            T.StructField(USER_IDX, T.IntegerType(), False),
            T.StructField(EMBEDDING, T.ArrayType(T.FloatType(), False), False),
        ]
    ),
    "item": T.StructType(
        [
            T.StructField(ITEM_IDX, T.IntegerType(), False),
            T.StructField(EMBEDDING, T.ArrayType(T.FloatType(), False), False),
        ]
    ),
}

SEQUENCES_SCHEMA = T.StructType(
    [
        T.StructField(USER_IDX, T.IntegerType(), False),
        T.StructField(HISTORY, T.ArrayType(T.IntegerType(), False), False),
        T.StructField(HISTORY_LENGTH, T.IntegerType(), False),
        T.StructField(VALIDATION_ITEMS, T.ArrayType(T.IntegerType(), False), False),
        T.StructField(TEST_ITEMS, T.ArrayType(T.IntegerType(), False), False),
    ]
)

GRAPH_DEGREES_SCHEMA = T.StructType(
    [
        T.StructField(NODE_TYPE, T.StringType(), False),
        T.StructField(NODE_IDX, T.IntegerType(), False),
        T.StructField(DEGREE, T.IntegerType(), False),
    ]
)

ITEM_COOCCURRENCE_SCHEMA = T.StructType(
    [
        T.StructField(ITEM_IDX, T.IntegerType(), False),
        T.StructField(NEIGHBOR_IDX, T.IntegerType(), False),
        T.StructField(COUNT, T.IntegerType(), False),
        T.StructField(RANK, T.IntegerType(), False),
    ]
)

# What the raw item catalog (JSON lines) may hold; ``category`` (one) and ``categories`` (many) both count.
RAW_ITEM_SCHEMA = T.StructType(
    [
        T.StructField(ITEM_ID, T.StringType(), True),
        T.StructField(TITLE, T.StringType(), True),
        T.StructField(CATEGORY, T.StringType(), True),
        T.StructField(CATEGORIES, T.ArrayType(T.StringType(), True), True),
        T.StructField(TAGS, T.ArrayType(T.StringType(), True), True),
        T.StructField(PRICE, T.DoubleType(), True),
    ]
)

ITEM_FEATURES_SCHEMA = T.StructType(
    [
        T.StructField(ITEM_IDX, T.IntegerType(), False),
        T.StructField(CATEGORY_MULTI_HOT, T.ArrayType(T.FloatType(), False), False),
        T.StructField(TAG_IDS, T.ArrayType(T.IntegerType(), False), False),
        T.StructField(TITLE_TFIDF_INDICES, T.ArrayType(T.IntegerType(), False), False),
        T.StructField(TITLE_TFIDF_VALUES, T.ArrayType(T.FloatType(), False), False),
        T.StructField(PRICE, T.FloatType(), True),
        T.StructField(TRAIN_USERS, T.IntegerType(), False),
    ]
)
