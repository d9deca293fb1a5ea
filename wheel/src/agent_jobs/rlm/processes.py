"""Running one artifact so that nothing it starts outlives the executor, and nothing it prints floods it.

The artifact runs under agent_jobs/rlm/supervisor.py (a child subreaper on Linux): the artifact and every
process it starts, including daemons that setsid() and fork again, stay below the supervisor. When the run
ends (the artifact exited, the timeout, a SIGTERM), the executor kills that whole tree, then the supervisor,
then sweeps /proc for any process still carrying this run's marker in its environment (RLM_EXECUTION_ID: the
artifact's supervisor may itself have been killed, leaving orphans to init).

What this cannot catch: a process that both left the tree (its supervisor killed, or started for the artifact
by another service: systemd-run, at, a Spark job on the cluster's workers) and dropped the marker from its
environment; processes of another user. Without /proc (not Linux) only the supervisor's process group is
killed, which a setsid() escapes.

Output is read as bytes from both pipes with a selector (one thread): the first HEAD_BYTES and the last
TAIL_KEEP bytes of each stream are kept, the rest is counted and cut, so a 20 MB line costs no memory.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent_jobs.rlm import supervisor

MARKER = "RLM_EXECUTION_ID"
HEAD_BYTES = 4096
SHOWN_TAIL_BYTES = 4096
OUTPUT_LIMIT = 64 * 1024
"""The longest last line read as the artifact's JSON output; a longer one is cut and not parsed."""
TAIL_KEEP = OUTPUT_LIMIT + 2
SUPERVISOR = str(Path(supervisor.__file__).resolve())


@dataclass
class Capture:
    """The head and tail of one output stream, and how many bytes it had in all."""

    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = HEAD_BYTES - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        if len(self.tail) > TAIL_KEEP:
            del self.tail[: len(self.tail) - TAIL_KEEP]

    @property
    def cut(self) -> int:
        """Bytes between the head and the shown tail that are not kept."""
        return max(0, self.total - len(self.head) - min(len(self.tail), SHOWN_TAIL_BYTES))

    def text(self, redact: Callable[[str], str], margin: int) -> str:
        """Head, a cut marker and tail, decoded (undecodable bytes replaced) and redacted. At a cut, `margin`
        bytes on each side are dropped too, so that a secret spanning the cut leaves no recognisable part."""
        shown = self.tail[-SHOWN_TAIL_BYTES:]
        if not self.cut:
            return redact(bytes(self.head + shown).decode("utf-8", "replace"))
        head = self.head[: max(0, len(self.head) - margin)]
        tail = shown[margin:]
        cut = self.total - len(head) - len(tail)
        marker = f"\n[... {cut} bytes cut ...]\n"
        return redact(head.decode("utf-8", "replace")) + marker + redact(tail.decode("utf-8", "replace"))

    def last_line(self) -> tuple[bytes | None, str | None]:
        """The last non-empty line, or (None, why) when it is longer than OUTPUT_LIMIT."""
        whole = self.total == len(self.head) + len(self.tail)
        data = bytes(self.head + self.tail) if whole else bytes(self.tail)
        data = data.rstrip()
        start = data.rfind(b"\n") + 1
        if start == 0 and not whole and data:
            return None, f"the last output line is longer than {OUTPUT_LIMIT} bytes: not read as the output"
        line = data[start:]
        if len(line) > OUTPUT_LIMIT:
            return None, f"the last output line is {len(line)} bytes, over {OUTPUT_LIMIT}: not read as the output"
        return (line or None), None


@dataclass
class Outcome:
    status: str  # exited | timed_out | cancelled | lost | failed_to_start
    exit_code: int | None = None
    stdout: Capture = field(default_factory=Capture)
    stderr: Capture = field(default_factory=Capture)
    stopped: int = 0
    """Processes the artifact left running that were killed when it ended."""
    error: str | None = None


def run(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    cancelled: Callable[[], bool],
    *,
    drain_seconds: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Run `argv` under the supervisor until it exits (then at most `drain_seconds` for its output pipes to
    close), `timeout` passes or `cancelled()` says so; then stop everything it started."""
    marker = uuid.uuid4().hex
    status_r, status_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, SUPERVISOR, str(status_w), "--", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            pass_fds=(status_w,),
            env={**env, MARKER: marker},
            cwd=cwd,
            start_new_session=True,  # its own process group: the fallback where there is no /proc
        )
    except OSError as exc:
        for fd in (status_r, status_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        return Outcome("failed_to_start", error=f"cannot start the artifact: {exc}")
    finally:
        for fd in (status_w, out_w, err_w):
            with contextlib.suppress(OSError):
                os.close(fd)
    outcome = Outcome("exited")
    streams = {out_r: outcome.stdout, err_r: outcome.stderr}
    selector = selectors.DefaultSelector()
    for fd in (status_r, out_r, err_r):
        selector.register(fd, selectors.EVENT_READ)
    status_text = b""
    deadline, exited_at = clock() + timeout, None
    try:
        while True:
            now = clock()
            if cancelled():
                outcome.status = "cancelled"
                break
            open_streams = [fd for fd in streams if fd in selector.get_map()]
            if exited_at is not None and (not open_streams or now - exited_at >= drain_seconds):
                break
            if exited_at is None and now >= deadline:
                outcome.status = "timed_out"
                break
            for key, _ in selector.select(timeout=max(0.0, min(0.1, deadline - now))):
                data = os.read(key.fd, 65536)
                if key.fd == status_r:
                    status_text += data
                    if not data:
                        selector.unregister(status_r)
                        if exited_at is None:  # the supervisor ended without reporting the artifact's exit
                            outcome.status, exited_at = "lost", clock()
                    elif b"\n" in status_text:
                        word, _, value = status_text.partition(b"\n")[0].decode().partition(" ")
                        if word == "exit":
                            outcome.exit_code, exited_at = int(value), clock()
                        else:
                            outcome.status, outcome.error, exited_at = "failed_to_start", value, clock()
                elif data:
                    streams[key.fd].feed(data)
                else:
                    selector.unregister(key.fd)
    finally:
        outcome.stopped = _stop(process, marker)
        _drain(selector, streams, status_r)
        selector.close()
        for fd in (status_r, out_r, err_r):
            os.close(fd)
    return outcome


def _stop(process: subprocess.Popen[bytes], marker: str) -> int:
    """Kill the supervisor's tree, the supervisor, then any process still carrying `marker`; how many of the
    artifact's processes were still running."""
    left = set(supervisor.descendants(process.pid))
    if process.poll() is None and not os.path.isdir("/proc"):
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
    supervisor.kill_tree(process.pid)
    with contextlib.suppress(OSError):
        process.kill()
    process.wait()
    for _ in range(20):
        marked = _marked(marker)
        if not marked:
            break
        left |= set(marked)
        for pid in marked:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return len(left)


def _marked(marker: str) -> list[int]:
    """Live processes whose environment carries this run's marker (not this process: it never has one)."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if needle not in environ.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat", "rb") as stat:
                if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
        except (OSError, IndexError):
            continue
        found.append(int(entry))
    return found


def _drain(selector: selectors.BaseSelector, streams: dict[int, Capture], status_r: int) -> None:
    """Read what is left in the pipes now that their writers are gone (bounded: an unreachable process may
    still hold one open)."""
    end = time.monotonic() + 1.0
    while any(fd in selector.get_map() for fd in streams) and time.monotonic() < end:
        for key, _ in selector.select(timeout=0.05):
            data = os.read(key.fd, 65536)
            if key.fd == status_r:
                if not data:
                    selector.unregister(status_r)
            elif data:
                streams[key.fd].feed(data)
            else:
                selector.unregister(key.fd)
