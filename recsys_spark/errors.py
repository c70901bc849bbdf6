"""Errors a user can cause and fix. Jobs print their message and exit with status 2, no stack trace."""


class UserError(Exception):
    """Something the person running the job can fix: the message says what to do."""


class ConfigError(UserError):
    """A configuration file or override is wrong."""


class MissingInputError(UserError):
    """A job was pointed at a day or table that has no data yet."""


class DataQualityError(UserError):
    """Input rows could not be accounted for, or a quality gate failed."""
