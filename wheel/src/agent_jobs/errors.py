"""The exception types entry points raise for expected failures (a clear message, no traceback needed)."""


class JobError(Exception):
    """A failure the user can act on: bad parameters, an unreachable endpoint, a missing experiment."""

    exit_status = 1
    """The console script's exit status for this failure (entry.entry_point)."""


class Cancelled(JobError):
    """The run was stopped from outside (SIGTERM: a cancelled or timed-out job run); what it was doing is
    recorded before this is raised."""

    exit_status = 143  # 128 + SIGTERM, as a shell reports a process stopped by it


class UsageError(JobError):
    """Arguments no run could succeed with, found after argparse (exit status 2, like argparse's own)."""

    exit_status = 2
