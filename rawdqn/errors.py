"""User-facing errors: the command line prints their one-line message and exits with code 2."""


class UsageError(ValueError):
    """Bad input from a user (a flag, a file, an environment); the message names it and the fix."""
