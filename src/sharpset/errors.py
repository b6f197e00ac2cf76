"""Errors that reach a user as a clear message and exit code 2 (not a traceback)."""


class UserError(Exception):
    """Bad input or configuration: the CLI prints the message and exits with code 2."""

    exit_code = 2
