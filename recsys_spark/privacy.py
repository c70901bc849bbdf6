"""Keyed pseudonymisation of user ids, and encryption of the raw lines kept in quarantine.

A pseudonym is ``HMAC-SHA256(key, utf8(user_id))`` as 64 lowercase hex digits, so anyone holding the key
computes a user's pseudonym with the standard library alone (the README shows how), and nobody without it
can reverse or recompute one. The key is read from the environment variable ``RECSYS_PSEUDONYM_KEY`` or,
failing that, from the secret file named by ``privacy.key_file``; never from the repository.

In Spark, the HMAC is built from the JVM's ``sha2`` (no Python worker per row). The key's pads reach the
executors as a one-row broadcast table, not as literals, so the key is not printed in query plans or the
Spark UI.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Dict, Iterable, List, Optional

from recsys_spark.config import project_root
from recsys_spark.config_sections import PrivacyConfig
from recsys_spark.errors import ConfigError

KEY_ENV = "RECSYS_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16
_BLOCK = 64  # SHA-256's block size: HMAC pads the key to it
_QUARANTINE_CONTEXT = b"recsys_spark quarantine raw_value"
_IPAD, _OPAD, _AES = "_pseudonym_ipad", "_pseudonym_opad", "_quarantine_key"
_HOW_TO = (f"export {KEY_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))') and keep it in your "
           "secret store (the same key every night: a new key gives every user a new pseudonym)")


def pseudonym_key(cfg: PrivacyConfig) -> Optional[bytes]:
    """The key as bytes when ``privacy.pseudonymize`` is on, else None; a clear error when it is missing."""
    if not cfg.pseudonymize:
        return None
    text = os.environ.get(KEY_ENV, "")
    source = f"${KEY_ENV}"
    if not text and cfg.key_file:
        path = os.path.abspath(os.path.expanduser(cfg.key_file))
        if path.startswith(project_root() + os.sep):
            raise ConfigError(f"privacy.key_file={cfg.key_file!r} is inside the repository: keep the key in a "
                              f"secret file elsewhere (or in ${KEY_ENV}), never in the repo")
        if not os.path.isfile(path):
            raise ConfigError(f"privacy.key_file={cfg.key_file!r} does not exist: create it, or {_HOW_TO}")
        with open(path, encoding="utf-8") as fh:
            text = fh.read().strip()
        source = cfg.key_file
    if not text:
        raise ConfigError(f"privacy.pseudonymize is on but no key was given: {_HOW_TO}, or name a secret file "
                          "in privacy.key_file")
    key = text.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"the pseudonym key from {source} is {len(key)} bytes; use at least {MIN_KEY_BYTES}: "
                          f"{_HOW_TO}")
    return key


def pseudonym(key: bytes, user_id: str) -> str:
    """A user's pseudonym: what downstream teams holding the key compute themselves."""
    return hmac.new(key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def quarantine_key(key: bytes) -> bytes:
    """The AES-256 key of quarantine's ``raw_value_encrypted``, derived from the pseudonym key.

    Decrypt in Spark: ``aes_decrypt(raw_value_encrypted, unhex('<quarantine_key(key).hex()>'), 'GCM')``.
    """
    return hmac.new(key, _QUARANTINE_CONTEXT, hashlib.sha256).digest()


def _pads(key: bytes) -> Dict[str, bytes]:
    block = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
    return {_IPAD: bytes(b ^ 0x36 for b in block), _OPAD: bytes(b ^ 0x5C for b in block),
            _AES: quarantine_key(key)}


def with_secrets(df, key: bytes):
    """``df`` with the key's pads as columns, from a broadcast one-row table (kept out of the plan's text)."""
    from pyspark.sql import functions as F

    secrets = _pads(key)
    row = df.sparkSession.createDataFrame([tuple(bytearray(v) for v in secrets.values())],
                                          ", ".join(f"{name} binary" for name in secrets))
    return df.crossJoin(F.broadcast(row))


def drop_secrets(df):
    return df.drop(_IPAD, _OPAD, _AES)


def pseudonym_column(column: str):
    """HMAC-SHA256 of a string column as hex, on a frame from :func:`with_secrets`; NULL stays NULL."""
    from pyspark.sql import functions as F

    inner = F.unhex(F.sha2(F.concat(F.col(_IPAD), F.col(column).cast("binary")), 256))
    return F.sha2(F.concat(F.col(_OPAD), inner), 256)


def encrypted_column(column: str):
    """AES-256-GCM of a string column with :func:`quarantine_key`, on a frame from :func:`with_secrets`."""
    from pyspark.sql import functions as F

    return F.aes_encrypt(F.col(column).cast("binary"), F.col(_AES), F.lit("GCM"))


def encrypted_instead(column: str, encrypted: str) -> dict:
    """Columns for ``withColumns`` on a frame from :func:`with_secrets`: ``encrypted`` holds ``column``
    encrypted, and ``column`` is emptied."""
    from pyspark.sql import functions as F

    return {encrypted: encrypted_column(column), column: F.lit(None).cast("string")}


def user_rows(users: Iterable[Dict], key: Optional[bytes], keep: List[str]) -> List[Dict]:
    """A loader's user records with only the ``keep`` attributes, and the id pseudonymised when keyed."""
    from recsys_spark import schemas as S

    out = []
    for user in users:
        uid = str(user[S.USER_ID])
        out.append({S.USER_ID: pseudonym(key, uid) if key else uid, **{a: user[a] for a in keep if a in user}})
    return out
