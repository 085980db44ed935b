"""The sandbox contains what untrusted code does: loops, memory, output floods, network, secrets, children."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from acqsynth.sandbox import runner as sandbox
from acqsynth.sandbox.runner import ISOLATION_ENV, network_isolation, process_isolation, run_many, run_python

NATIVE = network_isolation()
MODES = ["native", "socket-block"] if NATIVE == "netns" else ["native"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test in this machine's isolation mode and, where netns works, in the forced fallback too."""
    if request.param == "socket-block":
        monkeypatch.setenv(ISOLATION_ENV, "socket-block")
    return network_isolation()


def _host_processes_with(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmd:
                pids.append(int(entry))
    return pids


def test_isolation_modes_are_reported() -> None:
    assert network_isolation() in ("netns", "socket-block")
    assert process_isolation() in ("pidns", "pgroup")


def test_ok_and_stdout_stderr() -> None:
    r = run_python("import sys\nprint('hello')\nprint('warn', file=sys.stderr)", timeout_s=5)
    assert r.status == "ok" and r.ok and r.returncode == 0
    assert r.stdout == "hello\n" and r.stderr == "warn\n"
    assert r.wall_s < 5


def test_exception_is_an_error_with_traceback() -> None:
    r = run_python("def f():\n    raise ValueError('bad value')\nf()", timeout_s=5)
    assert r.status == "error" and r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == "ValueError: bad value"


def test_stdin_is_empty() -> None:
    r = run_python("input()", timeout_s=5)
    assert r.status == "error" and "EOFError" in r.stderr


def test_infinite_loop_times_out_quickly() -> None:
    start = time.monotonic()
    r = run_python("while True:\n    pass", timeout_s=1)
    assert r.status == "timeout"
    assert time.monotonic() - start < 4


def test_closing_stdout_and_stderr_does_not_escape_the_timeout() -> None:
    r = run_python("import os, time\nos.close(1)\nos.close(2)\ntime.sleep(60)", timeout_s=1)
    assert r.status == "timeout"
    assert r.wall_s < 3


def test_cpu_limit_counts_as_timeout() -> None:
    r = run_python("while True:\n    pass", timeout_s=8, cpu_s=1)
    assert r.status == "timeout" and "CPU" in r.detail
    assert r.wall_s < 5


def test_printing_forever_hits_the_output_cap() -> None:
    start = time.monotonic()
    r = run_python("while True:\n    print('spam' * 100)", timeout_s=10, max_output_bytes=20_000)
    assert r.status == "output_limit"
    assert len(r.stdout.encode()) <= 20_000
    assert time.monotonic() - start < 5


def test_allocating_10_gb_is_a_memory_error() -> None:
    r = run_python("x = bytearray(10 * 1024**3)\nprint('allocated')", timeout_s=10, memory_mb=512)
    assert r.status == "memory"
    assert "allocated" not in r.stdout


def test_big_files_are_refused() -> None:
    code = "open('big.bin', 'wb').write(b'x' * (4 * 1024 * 1024))"
    r = run_python(code, timeout_s=5, max_file_mb=1)
    assert r.status == "error" and "File too large" in r.stderr


def test_segfault_is_killed() -> None:
    r = run_python("import ctypes\nctypes.string_at(0)", timeout_s=5)
    assert r.status == "killed" and "SIGSEGV" in r.detail


def test_network_is_blocked(mode: str) -> None:
    """A server the test starts on 127.0.0.1 sees no connection from sandboxed code."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    seen: list[object] = []

    def accept() -> None:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                conn, addr = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            seen.append(addr)
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    code = (
        "import socket\n"
        "try:\n"
        f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "    s.sendall(b'hello')\n"
        "    print('CONNECTED')\n"
        "except OSError as e:\n"
        "    print('BLOCKED', type(e).__name__, e)\n"
    )
    try:
        r = run_python(code, timeout_s=5)
        time.sleep(0.3)
    finally:
        server.close()
        t.join(5)
    assert r.status == "ok", r
    assert "BLOCKED" in r.stdout and "CONNECTED" not in r.stdout
    assert seen == []


def test_network_allowed_when_asked() -> None:
    """Control for the test above: with network=True the same connection does go through."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()\nprint('CONNECTED')"
    try:
        r = run_python(code, timeout_s=5, network=True)
    finally:
        server.close()
    assert r.status == "ok" and "CONNECTED" in r.stdout


def test_socket_block_mode_also_stops_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ISOLATION_ENV, "socket-block")
    r = run_python("import socket\nsocket.getaddrinfo('localhost', 80)", timeout_s=5)
    assert r.status == "error" and "network access is disabled" in r.stderr
    ok = run_python("import socket\na, b = socket.socketpair()\na.send(b'x')\nprint(b.recv(1))", timeout_s=5)
    assert ok.status == "ok"  # Unix socket pairs (used by multiprocessing) still work


def test_environment_is_scrubbed(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "fake-secret-" + uuid.uuid4().hex
    monkeypatch.setenv("ACQSYNTH_FAKE_SECRET", secret)
    monkeypatch.setenv("HF_TOKEN", secret)
    code = "import os\nprint(sorted(os.environ))\nprint(os.environ.get('ACQSYNTH_FAKE_SECRET'), os.environ['HOME'])"
    if mode == "netns":  # with a private /proc, other processes' environments are not visible either
        code += (
            "\nleak = False\n"
            "for p in os.listdir('/proc'):\n"
            "    try:\n"
            f"        leak |= {secret!r}.encode() in open(f'/proc/{{p}}/environ', 'rb').read()\n"
            "    except OSError:\n"
            "        pass\n"
            "print('LEAK' if leak else 'NOLEAK')\n"
        )
    r = run_python(code, timeout_s=5)
    assert r.status == "ok", r
    assert secret not in r.stdout
    assert "HF_TOKEN" not in r.stdout and "ACQSYNTH_FAKE_SECRET" not in r.stdout.splitlines()[0]
    if mode == "netns":
        assert "NOLEAK" in r.stdout


def test_working_directory_is_private_and_removed() -> None:
    code = (
        "import os\n"
        "os.makedirs('nested/deeper', exist_ok=True)\n"
        "open('nested/../inside.txt', 'w').write('x')\n"
        "open('nested/deeper/f.txt', 'w').write('y')\n"
        "os.chmod('nested/deeper', 0o500)\n"
        "print(os.getcwd())\n"
        "print(sorted(os.listdir('.')))\n"
    )
    r = run_python(code, timeout_s=5)
    assert r.status == "ok", r
    cwd, listing = r.stdout.splitlines()
    assert "acqsynth-sandbox-" in cwd
    assert "inside.txt" in listing and "nested" in listing
    assert not Path(cwd).exists()


def test_child_that_outlives_the_parent_is_killed(mode: str) -> None:
    """A sleeping child (in pidns mode even one that escaped into its own session) dies with the run."""
    marker = "acqsynth-marker-" + uuid.uuid4().hex
    escape = ", start_new_session=True" if mode == "netns" else ""
    code = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}]{escape})\n"
        "print('spawned')\n"
    )
    r = run_python(code, timeout_s=5)
    assert r.status == "ok" and "spawned" in r.stdout
    deadline = time.monotonic() + 3
    while _host_processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _host_processes_with(marker) == []


def test_timeout_kills_grandchildren() -> None:
    marker = "acqsynth-marker-" + uuid.uuid4().hex
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}])\n"
        "time.sleep(60)\n"
    )
    r = run_python(code, timeout_s=1)
    assert r.status == "timeout"
    time.sleep(0.2)
    assert _host_processes_with(marker) == []


def test_run_many_keeps_order_and_isolates_failures() -> None:
    codes = ["print(1)", "raise SystemExit(3)", "print(3)", "while True: pass"]
    results = run_many(codes, max_workers=2, timeout_s=1)
    assert [r.status for r in results] == ["ok", "error", "ok", "timeout"]
    assert results[0].stdout == "1\n" and results[2].stdout == "3\n"
    assert results[1].returncode == 3
    assert run_many([]) == []


def test_code_runs_in_a_separate_interpreter() -> None:
    r = run_python("import os, sys\nprint(sys.flags.isolated, os.getpid())", timeout_s=5)
    flags, pid = r.stdout.split()
    assert flags == "1"
    assert int(pid) != os.getpid()


def test_results_are_frozen_records() -> None:
    r = run_python("print('x')", timeout_s=5)
    assert isinstance(r, sandbox.SandboxResult)
    with pytest.raises(AttributeError):
        r.status = "error"  # type: ignore[misc]


def test_forced_filesystem_modes_differ_as_documented(tmp_path: Path) -> None:
    """`filesystem=` forces a mode: `none` lets the code write a host file, a restricting mode does not."""
    best = sandbox.filesystem_isolation()
    if best == "none":
        pytest.skip("no filesystem restriction works on this machine")
    target = tmp_path / "escape.txt"
    code = f"open({str(target)!r}, 'w').write('x')\nprint('wrote')"
    assert run_python(code, filesystem="none").stdout.strip() == "wrote"
    assert target.read_text() == "x"
    target.unlink()
    forced = run_python(code, filesystem=best)
    assert forced.status == "error" and "wrote" not in forced.stdout
    assert not target.exists()
