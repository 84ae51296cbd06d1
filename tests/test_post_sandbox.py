"""The code reward: good programs score 1, and hostile ones score 0 without hurting the run."""

import socket

import pytest

from training.post import sandbox

# A loose wall clock (the machine may be busy) and a tight CPU limit: a busy loop dies of SIGXCPU.
LIMITS = sandbox.SandboxLimits(timeout_s=10.0, cpu_s=2, memory_bytes=256 << 20, file_bytes=1 << 20)
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"


def reward(program: str, tests: str = TESTS) -> float:
    return sandbox.code_test_reward(program, tests, limits=LIMITS)


def test_a_correct_program_scores_one_and_a_wrong_one_zero():
    assert reward("def add(a, b):\n    return a + b\n") == 1.0
    assert reward("def add(a, b):\n    return a - b\n") == 0.0


def test_a_program_may_use_its_own_folder():
    program = (
        "open('notes.txt', 'w').write('kept')\n"
        "def add(a, b):\n    return a + b if open('notes.txt').read() == 'kept' else 0\n"
    )
    assert reward(program) == 1.0


def test_an_infinite_loop_scores_zero_and_is_killed():
    run = sandbox.run_program("while True:\n    pass\n", limits=LIMITS)
    assert not run.ok
    assert run.timed_out or run.returncode < 0  # SIGXCPU or the wall-clock kill
    assert reward("def add(a, b):\n    while True:\n        pass\n") == 0.0


def test_a_program_that_sleeps_forever_is_killed_at_the_timeout():
    limits = sandbox.SandboxLimits(timeout_s=1.0)
    run = sandbox.run_program("import time\ntime.sleep(3600)\n", limits=limits)
    assert run.timed_out and run.returncode is None


def test_unbounded_allocation_scores_zero():
    program = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n"
    run = sandbox.run_program(program, limits=LIMITS)
    assert not run.ok and "MemoryError" in run.stderr
    assert reward(program + "def add(a, b):\n    return a + b\n") == 0.0


def test_writing_outside_its_folder_is_refused_and_scores_zero(tmp_path):
    target = tmp_path / "escaped.txt"
    program = f"open({str(target)!r}, 'w').write('x')\ndef add(a, b):\n    return a + b\n"
    run = sandbox.run_program(program, limits=LIMITS)
    assert run.violation
    assert not target.exists()
    assert reward(program) == 0.0


def test_removing_files_outside_its_folder_is_refused(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    program = f"import os\nos.remove({str(victim)!r})\n"
    assert sandbox.run_program(program, limits=LIMITS).violation
    assert victim.read_text() == "precious"


def test_abnormal_exits_score_zero():
    assert reward("import sys\nsys.exit(3)\n") == 0.0
    assert reward("raise RuntimeError('boom')\n") == 0.0
    assert reward("import faulthandler\nfaulthandler._sigsegv()\n") == 0.0


def test_exiting_cleanly_before_the_tests_run_scores_zero():
    assert reward("import sys\ndef add(a, b):\n    return 0\nsys.exit(0)\n") == 0.0
    assert reward("import os\nos._exit(0)\n") == 0.0


def test_starting_or_signalling_processes_is_refused():
    run = sandbox.run_program("import subprocess\nsubprocess.run(['true'])\n", limits=LIMITS)
    assert run.violation
    assert sandbox.run_program("import os\nos.kill(os.getpid(), 0)\n", limits=LIMITS).violation


def test_a_socket_connection_is_refused():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        program = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        assert sandbox.run_program(program, limits=LIMITS).violation


def test_programs_see_no_network_interfaces_but_loopback():
    if not sandbox.network_isolated():
        pytest.skip("this platform offers no network namespace (unshare -rn fails)")
    run = sandbox.run_program(
        "import socket\nprint(sorted(n for _, n in socket.if_nameindex()))\n", limits=LIMITS
    )
    assert run.ok and run.stdout.strip() == "['lo']"


def test_output_floods_are_cut_at_the_file_size_limit():
    run = sandbox.run_program("while True:\n    print('x' * 4096)\n", limits=LIMITS)
    assert not run.ok
    assert len(run.stdout) <= LIMITS.file_bytes


def test_bad_limits_and_empty_programs_are_refused():
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        sandbox.SandboxLimits(timeout_s=0)
    with pytest.raises(ValueError, match="non-empty string"):
        sandbox.run_program("  ")
    assert reward("") == 0.0
