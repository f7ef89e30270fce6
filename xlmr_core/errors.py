"""The one exception type a user sees: a single line naming the file, language or value."""


class XlmrError(Exception):
    """A problem with the user's input or environment, with what to do about it.

    The command-line interface prints the message alone (no traceback) and exits with 2.
    """
