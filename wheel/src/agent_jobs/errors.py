"""The one exception type entry points raise for expected failures (a clear message, no traceback needed)."""


class JobError(Exception):
    """A failure the user can act on: bad parameters, an unreachable endpoint, a missing experiment."""
