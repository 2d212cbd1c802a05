"""The one exception type that carries a message meant for the user.

Anything raised as `UserError` is shown as a single line in the UI and printed as
`error: ...` by the CLI (exit status 1). Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input or an unavailable resource, explained in one line."""
