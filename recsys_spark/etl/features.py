"""Tables derived from train interactions only: sequences, graph, item co-occurrence, item content features."""

from __future__ import annotations

from typing import Optional

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_spark import schemas as S


def sequences(interactions_df: DataFrame, length: int) -> DataFrame:
    """Per user: the last ``length`` train items by first time, left-padded with PAD_ITEM, and the targets.

    Items first met at the same instant are ordered by the pair's seeded ``tie_break`` hash, never by index.

    Returns (user_idx, history [length] int, history_length, validation_items [] int, test_items [] int).
    """
    ordered = F.struct(F.col(S.FIRST_TS), F.col(S.TIE_BREAK), F.col(S.ITEM_IDX))

    def items_of(split):
        return F.sort_array(F.collect_list(F.when(F.col(S.SPLIT) == split, ordered)))

    per_user = interactions_df.groupBy(S.USER_IDX).agg(
        items_of(S.SPLIT_TRAIN).alias("_train"),
        items_of(S.SPLIT_VALIDATION).alias("_validation"),
        items_of(S.SPLIT_TEST).alias("_test"),
    )
    train_items = F.transform(F.col("_train"), lambda s: s[S.ITEM_IDX])
    n = F.size(train_items)
    last = F.when(n > length, F.slice(train_items, n - length + 1, length)).otherwise(train_items)
    padding = F.array_repeat(F.lit(S.PAD_ITEM), F.greatest(F.lit(0), F.lit(length) - n))
    return per_user.select(
        S.USER_IDX,
        F.concat(padding, last).alias(S.HISTORY),
        F.least(n, F.lit(length)).cast("int").alias(S.HISTORY_LENGTH),
        F.transform(F.col("_validation"), lambda s: s[S.ITEM_IDX]).alias(S.VALIDATION_ITEMS),
        F.transform(F.col("_test"), lambda s: s[S.ITEM_IDX]).alias(S.TEST_ITEMS),
    )


def train_pairs_left_out(interactions_df: DataFrame, sequence_length: int, cooccurrence_max_items: int) -> dict:
    """Train pairs that the derived tables leave out, by reason: the oldest items beyond a user's
    ``sequence_length`` (``sequences``), and beyond ``cooccurrence_max_items_per_user`` (``item_cooccurrence``).
    Returns ``{"train_pairs": n, "sequence_length": a, "cooccurrence_max_items_per_user": b}``."""
    per_user = interactions_df.filter(F.col(S.SPLIT) == S.SPLIT_TRAIN).groupBy(S.USER_IDX).agg(F.count(F.lit(1)).alias("n"))
    row = per_user.agg(F.sum("n"), F.sum(F.greatest(F.col("n") - sequence_length, F.lit(0))),
                       F.sum(F.greatest(F.col("n") - cooccurrence_max_items, F.lit(0)))).first()
    return {"train_pairs": int(row[0] or 0), "sequence_length": int(row[1] or 0),
            "cooccurrence_max_items_per_user": int(row[2] or 0)}


def graph_degrees(train_df: DataFrame) -> DataFrame:
    """(node_type 'user'|'item', node_idx, degree) of the train graph."""
    def degrees(col, kind):
        return train_df.groupBy(col).agg(F.count(F.lit(1)).cast("int").alias(S.DEGREE)).select(
            F.lit(kind).alias(S.NODE_TYPE), F.col(col).cast("int").alias(S.NODE_IDX), S.DEGREE)

    return degrees(S.USER_IDX, "user").unionByName(degrees(S.ITEM_IDX, "item"))


def graph_edges(train_df: DataFrame, degrees_df: Optional[DataFrame] = None) -> DataFrame:
    """User-item edges of the train graph with symmetric normalised weight 1/sqrt(deg_u * deg_i).

    ``degrees_df`` is the ``graph_degrees`` table when already written (two small joins, no sort of the
    edges); without it the degrees are computed here.
    """
    degrees_df = degrees_df if degrees_df is not None else graph_degrees(train_df)

    def degree_of(kind, col):
        return degrees_df.filter(F.col(S.NODE_TYPE) == kind).select(F.col(S.NODE_IDX).alias(col),
                                                                    F.col(S.DEGREE).alias(f"_deg_{kind}"))

    return train_df.join(degree_of("user", S.USER_IDX), S.USER_IDX).join(degree_of("item", S.ITEM_IDX), S.ITEM_IDX).select(
        S.USER_IDX, S.ITEM_IDX,
        (F.lit(1.0) / F.sqrt(F.col("_deg_user").cast("double") * F.col("_deg_item"))).cast("float").alias(S.WEIGHT))


def item_cooccurrence(interactions_df: DataFrame, top_k: int, max_items_per_user: int) -> DataFrame:
    """Top-``top_k`` co-occurring items per item over users' train items (each user's latest
    ``max_items_per_user`` only, so that a few heavy users cannot dominate or blow up the counts).

    Each task holds whole users (one shuffle by user serves the recency window too) and counts its users'
    pairs at once as a sparse product (:func:`_pair_counts`); Spark then sums the tasks' counts of each
    pair. (A self-join by user would emit every pair of every user as a row before aggregating them: on
    2 M events it took 6.0 s against 3.4 s, bench/README.md.)
    """
    recent = Window.partitionBy(S.USER_IDX).orderBy(F.col(S.FIRST_TS).desc(), F.col(S.TIE_BREAK).desc())
    train = (
        interactions_df.filter(F.col(S.SPLIT) == S.SPLIT_TRAIN)
        .repartition(S.USER_IDX)
        .withColumn("_recency", F.row_number().over(recent))
        .filter(F.col("_recency") <= max_items_per_user)
        .select(S.USER_IDX, S.ITEM_IDX)
    )
    unordered = (train.mapInArrow(_pair_counts, f"_lo int, _hi int, {S.COUNT} long")
                 .groupBy("_lo", "_hi").agg(F.sum(S.COUNT).cast("int").alias(S.COUNT)))
    # Counting is symmetric: each unordered pair was counted once; emit it in both directions.
    directions = F.array(
        F.struct(F.col("_lo").alias(S.ITEM_IDX), F.col("_hi").alias(S.NEIGHBOR_IDX)),
        F.struct(F.col("_hi").alias(S.ITEM_IDX), F.col("_lo").alias(S.NEIGHBOR_IDX)),
    )
    pairs = unordered.select(F.explode(directions).alias("_d"), S.COUNT).select("_d.*", S.COUNT)
    best = Window.partitionBy(S.ITEM_IDX).orderBy(F.col(S.COUNT).desc(), F.col(S.NEIGHBOR_IDX))
    return pairs.withColumn(S.RANK, F.row_number().over(best).cast("int")).filter(F.col(S.RANK) <= top_k)


def _pair_counts(batches):
    """(user_idx, item_idx) rows of whole users (a task's partition, in any number of Arrow batches) ->
    (_lo, _hi, count): for each pair of items lo < hi, how many of these users have both (X^T X above its
    diagonal, X the users' 0/1 item matrix)."""
    import pyarrow as pa
    from scipy import sparse

    columns = [(batch.column(0).to_numpy(), batch.column(1).to_numpy()) for batch in batches if batch.num_rows]
    if not columns:
        return
    users = np.concatenate([u for u, _ in columns])
    items = np.concatenate([i for _, i in columns]).astype(np.int64)
    _, rows = np.unique(users, return_inverse=True)
    x = sparse.csr_matrix((np.ones(len(rows), np.int64), (rows, items)),
                          shape=(int(rows.max()) + 1, int(items.max()) + 1))
    counts = sparse.triu(x.T.tocsr() @ x, k=1).tocoo()
    yield pa.RecordBatch.from_arrays([pa.array(counts.row.astype(np.int32)), pa.array(counts.col.astype(np.int32)),
                                      pa.array(counts.data.astype(np.int64))], names=["_lo", "_hi", S.COUNT])


def read_catalog(spark, path: str) -> DataFrame:
    """Reads a raw item catalog (JSON lines) with the known fields; rows without an id are dropped."""
    return spark.read.schema(S.RAW_ITEM_SCHEMA).json(path).filter(
        F.col(S.ITEM_ID).isNotNull() & (F.length(S.ITEM_ID) > 0)
    ).dropDuplicates([S.ITEM_ID])


def _index_of(values_col, vocabulary):
    """Maps an array of strings to sorted, distinct indices in ``vocabulary`` (a python list)."""
    mapping = F.create_map(*[x for i, v in enumerate(vocabulary) for x in (F.lit(v), F.lit(i))]) if vocabulary else None
    if mapping is None:
        return F.array().cast("array<int>")
    return F.array_sort(F.array_distinct(F.filter(F.transform(values_col, lambda v: mapping[v]), lambda x: x.isNotNull())))


def item_features(item_vocab_df: DataFrame, train_df: DataFrame, catalog_df: Optional[DataFrame],
                  hash_features: int) -> DataFrame:
    """Content features per item index: category multi-hot, tag ids, hashed TF-IDF of the title, price,
    and the number of train users (the only statistic, from train alone). Items missing from the catalog
    get empty features."""
    # train holds one row per user-item pair, so a row count is the number of distinct users.
    popularity = train_df.groupBy(S.ITEM_IDX).agg(F.count(F.lit(1)).cast("int").alias(S.TRAIN_USERS))
    items = item_vocab_df.select(S.ITEM_ID, S.ITEM_IDX).join(popularity, S.ITEM_IDX, "left").fillna({S.TRAIN_USERS: 0})
    if catalog_df is None:
        return items.select(
            S.ITEM_IDX,
            F.array().cast("array<float>").alias(S.CATEGORY_MULTI_HOT),
            F.array().cast("array<int>").alias(S.TAG_IDS),
            F.array().cast("array<int>").alias(S.TITLE_TFIDF_INDICES),
            F.array().cast("array<float>").alias(S.TITLE_TFIDF_VALUES),
            F.lit(None).cast("float").alias(S.PRICE),
            S.TRAIN_USERS,
        )
    categories = F.array_distinct(F.concat(
        F.coalesce(F.col(S.CATEGORIES), F.array().cast("array<string>")),
        F.when(F.col(S.CATEGORY).isNotNull(), F.array(F.col(S.CATEGORY))).otherwise(F.array().cast("array<string>")),
    ))
    catalog = catalog_df.withColumn("_categories", categories).withColumn(
        "_tags", F.coalesce(F.col(S.TAGS), F.array().cast("array<string>")))
    category_vocab = sorted(r[0] for r in catalog.select(F.explode("_categories")).distinct().collect())
    tag_vocab = sorted(r[0] for r in catalog.select(F.explode("_tags")).distinct().collect())
    category_idx = _index_of(F.col("_categories"), category_vocab)
    multi_hot = F.transform(F.sequence(F.lit(0), F.lit(max(len(category_vocab), 1) - 1)),
                            lambda i: F.when(F.array_contains(category_idx, i), 1.0).otherwise(0.0).cast("float"))
    if not category_vocab:
        multi_hot = F.array().cast("array<float>")
    tfidf = title_tfidf(catalog, hash_features)
    return (
        items.join(catalog.select(S.ITEM_ID, "_categories", "_tags", S.PRICE), S.ITEM_ID, "left")
        .join(tfidf, S.ITEM_ID, "left")
        .select(
            S.ITEM_IDX,
            F.when(F.col("_categories").isNotNull(), multi_hot).otherwise(
                F.array_repeat(F.lit(0.0).cast("float"), len(category_vocab))).alias(S.CATEGORY_MULTI_HOT),
            F.coalesce(_index_of(F.col("_tags"), tag_vocab), F.array().cast("array<int>")).alias(S.TAG_IDS),
            F.coalesce(F.col("_tfidf_idx"), F.array().cast("array<int>")).alias(S.TITLE_TFIDF_INDICES),
            F.coalesce(F.col("_tfidf_val"), F.array().cast("array<float>")).alias(S.TITLE_TFIDF_VALUES),
            F.col(S.PRICE).cast("float").alias(S.PRICE),
            S.TRAIN_USERS,
        )
    )


def title_tfidf(catalog_df: DataFrame, hash_features: int) -> DataFrame:
    """Hashed TF-IDF of lower-cased alphanumeric title tokens: (item_id, _tfidf_idx, _tfidf_val).

    idf = ln((N + 1) / (df + 1)) over the catalog's N items, as Spark ML's IDF computes it.
    """
    n_items = F.lit(float(max(1, catalog_df.count())))
    tokens = (
        catalog_df.select(S.ITEM_ID, F.explode(F.split(F.lower(F.coalesce(F.col(S.TITLE), F.lit(""))), r"[^a-z0-9]+")).alias("_tok"))
        .filter(F.length("_tok") > 0)
        .withColumn("_bucket", F.pmod(F.hash("_tok"), F.lit(hash_features)).cast("int"))
    )
    tf = tokens.groupBy(S.ITEM_ID, "_bucket").agg(F.count(F.lit(1)).alias("_tf"))
    df = tf.groupBy("_bucket").agg(F.count(F.lit(1)).alias("_df"))
    weighted = tf.join(df, "_bucket").withColumn("_w", (F.col("_tf") * F.log((n_items + 1) / (F.col("_df") + 1))).cast("float"))
    entries = F.sort_array(F.collect_list(F.struct(F.col("_bucket"), F.col("_w"))))
    return weighted.groupBy(S.ITEM_ID).agg(entries.alias("_e")).select(
        S.ITEM_ID,
        F.transform("_e", lambda e: e["_bucket"]).alias("_tfidf_idx"),
        F.transform("_e", lambda e: e["_w"]).alias("_tfidf_val"),
    )


def load_adjacency(local_path: str, n_users: int, n_items: int):
    """Reads graph_edges Parquet without Spark into COO arrays of the bipartite adjacency.

    Returns (rows, cols, weights, shape): an (n_users + n_items) square matrix whose user u is row u and
    item i is row n_users + i, with both directions of every edge, ready for ``tf.sparse.SparseTensor``
    or ``scipy.sparse.coo_matrix``.
    """
    from recsys_spark.io import fs

    table = fs.read_parquet(local_path, columns=[S.USER_IDX, S.ITEM_IDX, S.WEIGHT])
    return _bipartite_coo(table.column(S.USER_IDX).to_numpy(), table.column(S.ITEM_IDX).to_numpy(),
                          table.column(S.WEIGHT).to_numpy(), n_users, n_items)


def normalized_adjacency(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int):
    """COO arrays (as ``load_adjacency``) of the distinct (user, item) pairs given, weighted 1/sqrt(deg_u deg_i)."""
    pairs = np.unique(np.stack([np.asarray(users, np.int64), np.asarray(items, np.int64)], axis=1), axis=0)
    users, items = pairs[:, 0], pairs[:, 1]
    deg_u = np.bincount(users, minlength=n_users).astype(np.float64)
    deg_i = np.bincount(items, minlength=n_items).astype(np.float64)
    return _bipartite_coo(users, items, 1.0 / np.sqrt(deg_u[users] * deg_i[items]), n_users, n_items)


def _bipartite_coo(users, items, weights, n_users: int, n_items: int):
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64) + n_users
    weights = np.asarray(weights, np.float32)
    rows = np.concatenate([users, items])
    cols = np.concatenate([items, users])
    order = np.lexsort((cols, rows))
    size = n_users + n_items
    return rows[order], cols[order], np.concatenate([weights, weights])[order], (size, size)
