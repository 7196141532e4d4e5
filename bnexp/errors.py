"""Errors that mean "the user's input is wrong" (exit code 2), as opposed to bugs."""


class BadInput(Exception):
    """Bad input: the message is one line naming the file and key; the CLI exits with 2."""


class ConfigError(BadInput):
    """A config file or override that does not fit the schema."""


class DataError(BadInput):
    """Dataset files that are missing, truncated or not in the expected format."""
