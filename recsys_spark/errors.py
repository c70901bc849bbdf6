"""Errors a user can cause and fix. Jobs print their message and exit with status 2, no stack trace."""


class UserError(Exception):
    """Something the person running the job can fix: the message says what to do."""


class ConfigError(UserError):
    """A configuration file or override is wrong."""


class MissingInputError(UserError):
    """A job was pointed at a day or table that has no data yet."""


class DataQualityError(UserError):
    """Input rows could not be accounted for, or a quality gate failed."""


class NumericalBreakdown(UserError):
    """A fit failed numerically at one setting (e.g. a factorisation broke down in float32); the message
    names the setting to change. A grid search skips such a point and records why."""


class RetryableFailure(Exception):
    """Something outside the input failed (a rank, an executor, a start-up that timed out): the message
    says what; re-running the job (an Airflow retry) continues where it stopped. Exit status 1."""
