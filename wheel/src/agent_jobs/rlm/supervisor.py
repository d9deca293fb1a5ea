"""The process between the executor and an artifact: it owns everything the artifact starts, so that the
executor can stop all of it (agent_jobs.rlm.processes). Standard library only; run as a script by path
(`python supervisor.py STATUS_FD -- ARGV...`), never imported by the artifact.

- On Linux it makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER): whatever the artifact starts and
  orphans, even a daemon that called setsid() and forked again, is re-parented to this process instead of to
  init, so it stays in this process's tree, where the executor finds it.
- It asks to be sent SIGTERM if the executor dies (PR_SET_PDEATHSIG); on SIGTERM it kills its whole tree and
  exits, so a hard-killed executor does not leave the artifact running.
- It runs the artifact with stdin closed and stdout/stderr on the executor's pipes, then points its own
  stdout/stderr at /dev/null (so that only the artifact and its children hold the pipes open), writes the
  artifact's exit status to STATUS_FD when it exits, and keeps reaping orphans until the executor kills it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (AttributeError, OSError):  # not Linux: no subreaper, the process group is all there is
        return False


def descendants(root: int) -> list[int]:
    """Every live process below `root`, from /proc (parents before children); [] where there is no /proc."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def kill_tree(root: int) -> None:
    """SIGKILL everything below `root`, repeating until nothing is left (a process may fork meanwhile)."""
    for _ in range(50):
        pids = descendants(root)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def main(argv: list[str]) -> int:
    status_fd, argv = int(argv[0]), argv[2:]  # STATUS_FD -- ARGV...
    parent = os.getppid()
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    def stop(signum: int, frame: object) -> None:
        kill_tree(os.getpid())
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    if os.getppid() != parent:  # the executor died before PDEATHSIG was armed
        return 1
    try:
        artifact = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    except OSError as exc:
        os.write(status_fd, f"error {exc}\n".encode())
        return 1
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    reported = False
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:  # nothing left to reap: wait for the executor to stop this process
            time.sleep(0.2)
            continue
        if pid == artifact.pid and not reported:
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            os.write(status_fd, f"exit {code}\n".encode())
            reported = True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
