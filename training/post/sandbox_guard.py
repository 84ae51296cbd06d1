"""The in-process guard of a sandboxed program: ``python -I -B -c <this file> program.py [tests.py]``.

It runs in the child interpreter, standard library only, before any line of the program, and
installs a PEP 578 audit hook (which the program cannot remove) that ends the process with
``VIOLATION_EXIT`` on: opening a file for writing, or removing, renaming, linking or changing
one, outside the working folder; starting processes; opening sockets to anywhere; signalling
processes; loading native code through ctypes. With ``tests.py``, the tests run after the
program in its namespace, and then the guard prints the sentinel it read from the first line of
stdin, so the parent knows the tests ran to their end rather than the program exiting early
(sys.exit, os._exit). The sentinel stops accidents, not a program written to defeat it: one
that walks the interpreter's frames can read it (refusing frame access breaks the standard
library, which uses sys._getframe on import).

The hook covers Python code; the parent adds the OS-level limits (rlimits, an unprivileged
user where it can, no network namespace) that hold for native code too.
"""

import os
import sys

VIOLATION_EXIT = 86
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.utime",
    "shutil.rmtree",
}
_REFUSED = {
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "ctypes.dlopen",
    "ctypes.dlsym",
    "ctypes.cdata",
}
_ROOT = os.path.realpath(os.getcwd())


def _refuse(event: str) -> None:
    os.write(2, f"\nsandbox: {event} refused\n".encode())
    os._exit(VIOLATION_EXIT)


def _inside(path) -> bool:
    real = os.path.realpath(os.fsdecode(path))
    return real == _ROOT or real.startswith(_ROOT + os.sep)


def _guard(event: str, args: tuple) -> None:
    if event in _REFUSED:
        _refuse(event)
    elif event == "open":
        path, mode, flags = args
        writes = (mode is not None and any(c in mode for c in "wax+")) or flags & _WRITE_FLAGS
        if writes and isinstance(path, (str, bytes, os.PathLike)) and not _inside(path):
            _refuse(f"writing {os.fsdecode(path)}")
    elif event in _PATH_EVENTS:
        for arg in args:
            if isinstance(arg, (str, bytes, os.PathLike)) and not _inside(arg):
                _refuse(f"{event} on {os.fsdecode(arg)}")


def _compiled(path: str):
    with open(path, encoding="utf-8") as source:
        return compile(source.read(), path, "exec")


def main() -> None:
    program = _compiled(sys.argv[1])
    tests = _compiled(sys.argv[2]) if len(sys.argv) > 2 else None
    sentinel = sys.stdin.readline() if tests is not None else ""
    sys.argv = sys.argv[1:2]
    namespace = {"__name__": "__main__", "__file__": sys.argv[0]}
    sys.addaudithook(_guard)
    exec(program, namespace)
    if tests is not None:
        exec(tests, namespace)
        sys.stdout.write("\n" + sentinel)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
