"""Run an untrusted program (a policy's answer to a coding task) and score it against tests.

Each run gets its own temporary working folder, deleted afterwards, and a child process with:
- a wall-clock timeout, after which its whole process group is killed (a program that sleeps
  or blocks forever);
- rlimits set in ``preexec_fn``: CPU seconds (a busy loop gets SIGXCPU), address space (an
  unbounded allocation gets MemoryError), file size (a flood of output gets SIGXFSZ), open
  files, no core dumps;
- no network where the platform allows it: a new network namespace through ``unshare -rn``
  (util-linux) when that works for the calling user, see ``network_isolated()``; where it does
  not, the guard still refuses sockets to Python code;
- the in-process guard of ``sandbox_guard`` (an audit hook): no writes outside the folder, no
  processes, no sockets, no ctypes.

Not covered: the program runs as the calling user (dropping to an unprivileged user needs an
interpreter that user may execute; here the interpreter lives under /root), so native code
that escapes the guard is bounded only by the rlimits and the namespace; a container is the
stronger boundary for hostile code. Hand-written because no library in the stack sandboxes a
subprocess; TRL and verl leave code execution to external services.
"""

from __future__ import annotations

import functools
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from training.post import sandbox_guard

_GUARD_SOURCE = Path(sandbox_guard.__file__).read_text(encoding="utf-8")


@dataclass(frozen=True)
class SandboxLimits:
    """What one program run may use."""

    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64

    def __post_init__(self) -> None:
        for name in ("timeout_s", "cpu_s", "memory_bytes", "file_bytes", "open_files"):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"SandboxLimits.{name} must be positive, got {getattr(self, name)}"
                )


@dataclass(frozen=True)
class ProgramRun:
    """How one sandboxed run ended. ``returncode`` is negative for a signal, None on timeout."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    tests_completed: bool = False

    @property
    def violation(self) -> bool:
        """The guard stopped the program (a write outside its folder, a socket, a process...)."""
        return self.returncode == sandbox_guard.VIOLATION_EXIT

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _apply_limits(limits: SandboxLimits) -> None:
    """Runs in the child between fork and exec: the kernel enforces these from then on."""
    cpu = limits.cpu_s
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@functools.cache
def network_isolated() -> bool:
    """Whether programs run in their own empty network namespace (``unshare -rn`` works here)."""
    try:
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _command(has_tests: bool) -> list[str]:
    prefix = ["unshare", "-rn"] if network_isolated() else []
    files = ["program.py", "tests.py"] if has_tests else ["program.py"]
    return [*prefix, sys.executable, "-I", "-B", "-c", _GUARD_SOURCE, *files]


def _read(path: Path, limit: int) -> str:
    with path.open("rb") as stream:
        return stream.read(limit).decode("utf-8", errors="replace")


def _wait(process: subprocess.Popen, timeout_s: float) -> bool:
    """Wait for the program; on timeout kill its process group. Returns whether it timed out."""
    try:
        process.wait(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    try:  # also reaps anything it left behind in its session
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    return timed_out


def run_program(
    source: str,
    stdin: str = "",
    tests: str | None = None,
    limits: SandboxLimits = SandboxLimits(),
) -> ProgramRun:
    """Run Python ``source`` (then ``tests``, in its namespace) in a fresh sandbox."""
    if not isinstance(source, str) or not source.strip():
        raise ValueError("source must be a non-empty string of Python code")
    sentinel = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="omni-sandbox-") as scratch:
        scratch = Path(scratch)
        workdir = scratch / "work"
        workdir.mkdir()
        (workdir / "program.py").write_text(source, encoding="utf-8")
        if tests is not None:
            (workdir / "tests.py").write_text(tests, encoding="utf-8")
            stdin = f"{sentinel}\n{stdin}"
        (scratch / "stdin").write_text(stdin, encoding="utf-8")
        # stdin/stdout/stderr live beside the folder, not in it: the program cannot rewrite them
        with (
            (scratch / "stdin").open("rb") as fin,
            (scratch / "stdout").open("wb") as fout,
            (scratch / "stderr").open("wb") as ferr,
        ):
            process = subprocess.Popen(
                _command(tests is not None),
                cwd=workdir,
                stdin=fin,
                stdout=fout,
                stderr=ferr,
                env={"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir)},
                preexec_fn=functools.partial(_apply_limits, limits),
                start_new_session=True,
            )
            timed_out = _wait(process, limits.timeout_s)
        stdout = _read(scratch / "stdout", limits.file_bytes)
        stderr = _read(scratch / "stderr", limits.file_bytes)
    returncode = None if timed_out else process.returncode
    completed = tests is not None and returncode == 0 and stdout.rstrip().endswith(sentinel)
    return ProgramRun(returncode, stdout, stderr, timed_out, completed)


def code_test_reward(program: str, tests: str, limits: SandboxLimits = SandboxLimits()) -> float:
    """1.0 when ``program`` runs and its ``tests`` (assert statements) all pass, else 0.0.

    A program that loops, allocates without bound, writes outside its folder, opens a socket,
    crashes or exits before the tests finish scores 0.
    """
    if not isinstance(program, str) or not program.strip():
        return 0.0  # an empty answer is a wrong answer, not bad input
    return 1.0 if run_program(program, tests=tests, limits=limits).tests_completed else 0.0
