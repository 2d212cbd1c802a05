"""The one exception type that carries a message meant for the user.

Anything raised as `UserError` is shown as a single line in the UI and printed as
`error: ...` by the CLI (exit status 1). Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input or an unavailable resource, explained in one line."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when it has none), at most `limit`
    characters: how a library's multi-line error becomes part of a one-line message."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
