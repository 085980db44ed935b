"""Adversarial programs against the sandbox: each is contained, reported as the candidate's failure
(a `SandboxResult`, never an exception in the caller), and leaves the host as it was.

Every attack runs in this machine's native isolation mode and, where namespaces work, in the forced
socket-block fallback too. Host checks: no process carrying the attack's marker survives, nothing
with the marker appears in the places the attack targets, and the test's own files are unchanged.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from acqsynth.sandbox import runner as sandbox
from acqsynth.sandbox.runner import ISOLATION_ENV, SandboxResult, run_python
from acqsynth.tasks.code import CodeTask

NATIVE = sandbox.network_isolation()
MODES = ["native", "socket-block"] if NATIVE == "netns" else ["native"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "socket-block":
        monkeypatch.setenv(ISOLATION_ENV, "socket-block")
    return sandbox.network_isolation()


@dataclass
class Host:
    """What an attack may target on the host, and a fingerprint of it taken before the attack."""

    marker: str
    victim_dir: Path
    fake_home: Path
    secret: str

    def fingerprint(self) -> dict[str, tuple[str, int, int]]:
        """Content, mode and mtime of every victim file and directory, and the mode of /tmp."""
        out: dict[str, tuple[str, int, int]] = {}
        for p in [self.victim_dir, *sorted(self.victim_dir.rglob("*"))]:
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            out[str(p.relative_to(self.victim_dir))] = (digest, st.st_mode, st.st_mtime_ns)
        out["/tmp"] = ("dir", os.stat("/tmp").st_mode, 0)
        return out

    def leftovers(self) -> list[str]:
        """Processes carrying the marker, and files named with it in shared temp directories."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if self.marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                        found.append(f"process {entry}")
                except OSError:
                    continue
        for shared in ("/tmp", "/var/tmp", "/dev/shm"):
            with_marker = [n for n in os.listdir(shared) if self.marker in n] if os.path.isdir(shared) else []
            found += [f"{shared}/{n}" for n in with_marker]
        return found


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    """A victim directory with files, and a fake home with a fake SSH key (HOME points at it)."""
    marker = "acqsynth-attack-" + uuid.uuid4().hex[:12]
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "results.jsonl").write_text('{"id": 1}\n')
    (victim / "sub" / "model.bin").write_bytes(os.urandom(256))
    victim.chmod(0o777)  # world-writable on purpose: only the sandbox may stop the write
    (victim / "results.jsonl").chmod(0o666)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    secret = "ssh-ed25519 FAKEKEY-" + uuid.uuid4().hex
    (home / ".ssh" / "id_ed25519").write_text(secret)
    (home / ".ssh").chmod(0o755)
    (home / ".ssh" / "id_ed25519").chmod(0o644)  # readable by anyone: only hiding protects it
    for d in (tmp_path, tmp_path.parent, tmp_path.parent.parent):
        d.chmod(0o755)  # so that only the sandbox, not a 0700 pytest directory, stands in the way
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    return Host(marker, victim, home, secret)


@dataclass(frozen=True)
class Attack:
    name: str
    code: Callable[[Host], str]
    limits: dict
    check: Callable[[SandboxResult, Host, str], None]
    """Asserts on the result; the third argument is the isolation mode."""
    needs: str = ""
    """`filesystem`, `pidns` or `sandbox-uid` when only that layer contains the attack (see docs/security.md)."""


def _contained(*statuses: str) -> Callable[[SandboxResult, Host, str], None]:
    def check(r: SandboxResult, h: Host, mode: str) -> None:
        assert r.status in statuses, r

    return check


def _no_secret(r: SandboxResult, h: Host, mode: str) -> None:
    assert r.status == "ok", r
    assert h.secret not in r.stdout and h.secret not in r.stderr
    assert "DENIED" in r.stdout


def _write_outside(r: SandboxResult, h: Host, mode: str) -> None:
    assert r.status == "ok", r
    assert "WROTE" not in r.stdout, r.stdout
    assert r.stdout.count("DENIED") == 4


def _limits_not_raised(r: SandboxResult, h: Host, mode: str) -> None:
    assert r.status == "ok", r
    assert r.stdout.split() == ["DENIED", "DENIED", "DENIED"]


def _fork_bomb_stopped(r: SandboxResult, h: Host, mode: str) -> None:
    assert r.status in ("ok", "timeout", "error"), r
    if r.status == "ok":  # the bomb met RLIMIT_NPROC well before thousands of processes
        forks = int(r.stdout.split()[1])
        assert "LIMIT" in r.stdout and forks < 200, r.stdout


def _network(r: SandboxResult, h: Host, mode: str) -> None:
    assert r.status == "ok", r
    assert "CONNECTED" not in r.stdout and "BLOCKED" in r.stdout


ATTACKS = [
    Attack(
        "fork bomb",
        lambda h: (
            "import os, sys, time\n"
            f"sys.argv[0] = {h.marker!r}\n"
            "n = 0\n"
            "try:\n"
            "    while True:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(30)\n"
            "            os._exit(0)\n"
            "        n += 1\n"
            "except OSError as e:\n"
            "    print('LIMIT', n, e)\n"
        ),
        {"timeout_s": 5, "max_processes": 32},
        _fork_bomb_stopped,
    ),
    Attack(
        "exponential fork bomb",
        lambda h: "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        {"timeout_s": 2, "max_processes": 32},
        _contained("timeout", "error"),
    ),
    Attack(
        "memory bomb",
        lambda h: "hoard = []\nwhile True:\n    hoard.append(bytearray(64 * 1024 * 1024))\n",
        {"timeout_s": 10, "memory_mb": 512},
        _contained("memory"),
    ),
    Attack("infinite loop", lambda h: "while True:\n    pass\n", {"timeout_s": 1}, _contained("timeout")),
    Attack(
        "busy threads",
        lambda h: (
            "import threading\n"
            "def spin():\n    while True:\n        pass\n"
            "for _ in range(8):\n    threading.Thread(target=spin, daemon=True).start()\n"
            "threading.Event().wait()\n"
        ),
        {"timeout_s": 8, "cpu_s": 1},
        _contained("timeout"),
    ),
    Attack(
        "sleeping child that outlives the parent",
        lambda h: (
            "import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {h.marker!r}],"
            " start_new_session=True)\n"
            "print('spawned')\n"
        ),
        {"timeout_s": 5},
        lambda r, h, mode: None,  # containment is the host check: the child must not survive
        needs="pidns",
    ),
    Attack(
        "writing outside the working directory",
        lambda h: (
            "import os\n"
            f"targets = ['/tmp/{h.marker}', '/var/tmp/{h.marker}', '/dev/shm/{h.marker}',"
            f" {str(h.victim_dir / h.marker)!r}]\n"
            "for t in targets:\n"
            "    try:\n"
            "        open(t, 'w').write('pwned')\n"
            "        print('WROTE', t)\n"
            "    except OSError:\n"
            "        print('DENIED', t)\n"
            "try:\n"
            f"    open({str(h.victim_dir / 'results.jsonl')!r}, 'a').write('pwned\\n')\n"
            "    print('WROTE results')\n"
            "except OSError:\n"
            "    pass\n"
        ),
        {"timeout_s": 5},
        _write_outside,
        needs="filesystem",
    ),
    Attack(
        "deleting files",
        lambda h: (
            "import os, shutil\n"
            "for f in ["
            f"{str(h.victim_dir / 'results.jsonl')!r}, {str(h.victim_dir / 'sub' / 'model.bin')!r}]:\n"
            "    try:\n"
            "        os.remove(f)\n"
            "    except OSError:\n"
            "        pass\n"
            f"shutil.rmtree({str(h.victim_dir)!r}, ignore_errors=True)\n"
            f"os.system('rm -rf {h.victim_dir} 2>/dev/null')\n"
            "print('tried')\n"
        ),
        {"timeout_s": 5},
        _contained("ok"),
        needs="filesystem",
    ),
    Attack(
        "reading ~/.ssh",
        lambda h: (
            "import os, glob\n"
            f"paths = [{str(h.fake_home / '.ssh' / 'id_ed25519')!r}, '/root/.ssh/id_rsa', '/root/.ssh/id_ed25519']\n"
            "paths += glob.glob('/home/*/.ssh/*')\n"
            "for p in paths:\n"
            "    try:\n"
            "        print(open(p).read())\n"
            "    except OSError:\n"
            "        print('DENIED', p)\n"
        ),
        {"timeout_s": 5},
        _no_secret,
        needs="filesystem",
    ),
    Attack(
        "reading /proc/self/environ and the parent's environment",
        lambda h: (
            "import os\n"
            "for pid in {'self', os.getppid(), 1, *[int(p) for p in os.listdir('/proc') if p.isdigit()]}:\n"
            "    try:\n"
            "        print(open(f'/proc/{pid}/environ', 'rb').read())\n"
            "    except OSError:\n"
            "        pass\n"
            "print('DENIED' if 'AWS_SECRET_ACCESS_KEY' not in os.environ else 'LEAKED')\n"
        ),
        {"timeout_s": 5},
        _no_secret,
    ),
    Attack(
        "huge stdout",
        lambda h: "import sys\nsys.stdout.write('x' * 50_000_000)\n",
        {"timeout_s": 10, "max_output_bytes": 100_000},
        _contained("output_limit"),
    ),
    Attack(
        "huge stderr",
        lambda h: "import os\nwhile True:\n    os.write(2, b'e' * 65536)\n",
        {"timeout_s": 10, "max_output_bytes": 100_000},
        _contained("output_limit"),
    ),
    Attack(
        "os.setrlimit to raise limits",
        lambda h: (
            "import resource\n"
            "for lim in (resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_NPROC):\n"
            "    try:\n"
            "        resource.setrlimit(lim, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
            "        print('RAISED')\n"
            "    except (ValueError, OSError):\n"
            "        print('DENIED')\n"
        ),
        {"timeout_s": 5},
        _limits_not_raised,
    ),
    Attack(
        "ignoring SIGTERM, SIGINT and SIGHUP",
        lambda h: (
            "import signal, time\n"
            "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
            "    signal.signal(s, signal.SIG_IGN)\n"
            "while True:\n"
            "    time.sleep(0.01)\n"
        ),
        {"timeout_s": 1},
        _contained("timeout"),
    ),
    Attack(
        "chmod, utime and chown of host files",
        lambda h: (
            "import os\n"
            f"target = {str(h.victim_dir / 'results.jsonl')!r}\n"
            "for name, call in [('chmod', lambda: os.chmod(target, 0o4777)), ('utime', lambda: os.utime(target, (0, 0))),"
            " ('chown', lambda: os.chown(target, 65534, 65534)), ('chmod /tmp', lambda: os.chmod('/tmp', 0o700))]:\n"
            "    try:\n"
            "        call()\n"
            "        print('CHANGED', name)\n"
            "    except OSError:\n"
            "        print('DENIED', name)\n"
        ),
        {"timeout_s": 5},
        lambda r, h, mode: (r.status == "ok" and "CHANGED" not in r.stdout) or pytest.fail(str(r)),
        needs="sandbox-uid",
    ),
    Attack(
        "a directory tree 3000 deep, with symlinks to host files, made unwritable",
        lambda h: (
            "import os\n"
            f"os.symlink({str(h.victim_dir / 'results.jsonl')!r}, 'link-to-host')\n"
            f"os.symlink({str(h.victim_dir)!r}, 'dirlink-to-host')\n"
            "for _ in range(3000):\n"
            "    os.mkdir('d')\n"
            "    os.chdir('d')\n"
            f"    os.symlink({str(h.victim_dir / 'sub' / 'model.bin')!r}, 'l')\n"
            "os.chdir(os.environ['HOME'])\n"
            "os.chmod('d', 0o500)\n"
            "print('built')\n"
        ),
        {"timeout_s": 20},
        _contained("ok"),
    ),
    Attack(
        "forging the monitor's status report",
        lambda h: (
            "import os\n"
            "for fd in os.listdir(f'/proc/{os.getppid()}/fd') if os.access(f'/proc/{os.getppid()}/fd', os.R_OK) else []:\n"
            "    try:\n"
            "        with open(f'/proc/{os.getppid()}/fd/{fd}', 'w') as f:\n"
            "            f.write('0 0.000000\\n')\n"
            "    except OSError:\n"
            "        pass\n"
            "raise SystemExit(3)\n"
        ),
        {"timeout_s": 5},
        lambda r, h, mode: (r.status == "error" and r.returncode == 3) or pytest.fail(str(r)),
    ),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_contained(attack: Attack, mode: str, host: Host) -> None:
    if attack.needs == "filesystem" and sandbox.filesystem_isolation() == "none":
        pytest.skip("without a filesystem restriction this is not contained (docs/security.md)")
    if attack.needs == "pidns" and sandbox.process_isolation() != "pidns":
        pytest.skip("without a PID namespace a child that calls setsid escapes (docs/security.md)")
    if attack.needs == "sandbox-uid" and sandbox.isolation()["user"] != "sandbox-uid":
        pytest.skip("code that keeps the caller's uid may chmod the caller's own files (docs/security.md)")
    before = host.fingerprint()
    start = time.monotonic()
    result = run_python(attack.code(host), **attack.limits)  # must return, never raise
    assert isinstance(result, SandboxResult)
    assert time.monotonic() - start < attack.limits["timeout_s"] + 10
    attack.check(result, host, mode)
    deadline = time.monotonic() + 5
    while host.leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.leftovers() == []
    assert host.fingerprint() == before
    assert host.secret not in result.stdout + result.stderr


def test_connecting_to_a_local_server_is_blocked(mode: str, host: Host) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    seen: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                seen.append(server.accept()[1])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    code = (
        "import socket, subprocess\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'x')\n"
        "    print('CONNECTED')\n"
        "except OSError:\n"
        "    print('BLOCKED')\n"
    )
    try:
        r = run_python(code, timeout_s=5)
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(2)
        server.close()
    _network(r, host, mode)
    assert seen == []


def test_restricted_filesystem_keeps_python_working(mode: str) -> None:
    """The jail hides homes but keeps the interpreter, its standard library and site-packages usable."""
    code = (
        "import json, sqlite3, subprocess, sys, numpy\n"
        "out = subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True)\n"
        "open('scratch.txt', 'w').write(out.stdout)\n"
        "print(open('scratch.txt').read().strip(), json.dumps([1]))\n"
    )
    r = run_python(code, timeout_s=20)
    assert r.status == "ok", r
    assert r.stdout.split() == ["42", "[1]"]


def test_isolation_report_names_every_mode() -> None:
    report = sandbox.isolation()
    assert set(report) == {"network", "processes", "filesystem", "user"}
    assert report["network"] in ("netns", "socket-block")
    assert report["filesystem"] in ("readonly", "landlock", "none")
    assert report["user"] in ("sandbox-uid", "root-without-capabilities", "caller-without-capabilities")
    if os.getuid() == 0 and report["filesystem"] == "readonly":
        assert report["user"] == "sandbox-uid"
        assert int(run_python("import os\nprint(os.getuid())", timeout_s=5).stdout) in sandbox.SANDBOX_UIDS


def test_hostile_candidates_fail_the_candidate_not_the_grading() -> None:
    """Through the code task: attacks become failed verdicts; the honest candidate still passes."""
    from acqsynth.samples import Sample

    sample = Sample(
        id="add",
        question="Write add(a, b).",
        answer="def add(a, b):\n    return a + b\n",
        tests="assert add(2, 3) == 5\n",
        entry_point="add",
    )
    candidates = {
        "honest": "def add(a, b):\n    return a + b",
        "fork bomb": "import os\ndef add(a, b):\n    while True:\n        os.fork()",
        "fake exit": "import os\nos._exit(0)\ndef add(a, b):\n    return 0",
        "loop": "def add(a, b):\n    while True:\n        pass",
        "escape": "open('/tmp/acqsynth-escape-' + str(id(0)), 'w')\ndef add(a, b):\n    return a + b",
    }
    task = CodeTask(timeout_s=3)
    verdicts = {name: task.grade(f"```python\n{code}\n```", sample) for name, code in candidates.items()}
    assert verdicts["honest"].correct
    for name in ("fork bomb", "fake exit", "loop"):
        assert not verdicts[name].correct, (name, verdicts[name])
    if sandbox.filesystem_isolation() != "none":
        assert not verdicts["escape"].correct


def test_candidates_cannot_see_each_other(mode: str) -> None:
    """Two programs at once: neither can list or read the other's working directory or main.py."""
    spy = (
        "import glob, os, time\n"
        "time.sleep(0.5)\n"
        "parent = os.path.dirname(os.getcwd())\n"
        "try:\n"
        "    others = [d for d in os.listdir(parent)\n"
        "              if d.startswith('acqsynth-sandbox-') and d != os.path.basename(os.getcwd())]\n"
        "except OSError:\n"
        "    others = []\n"
        "found = [open(p).read() for p in glob.glob(parent + '/acqsynth-sandbox-*/main.py')\n"
        "         if os.path.dirname(p) != os.getcwd() and os.access(p, os.R_OK)]\n"
        "print('OTHERS', len(others), 'READ', len(found))\n"
    )
    secret = "SECRET_TESTS_" + uuid.uuid4().hex
    victim = f"# {secret}\nimport time\ntime.sleep(2)\n"
    if sandbox.filesystem_isolation() == "none":
        pytest.skip("without a filesystem restriction candidates of one user can read each other")
    results = sandbox.run_many([victim, spy], max_workers=2, timeout_s=10)
    assert results[0].ok and results[1].ok, results
    assert results[1].stdout.strip() == "OTHERS 0 READ 0"
    assert secret not in results[1].stdout


def test_working_directory_under_home_keeps_the_home_hidden(
    mode: str, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TMPDIR inside $HOME: the sandbox's own directory is usable, the rest of the home is not."""
    import tempfile

    if sandbox.filesystem_isolation() == "none":
        pytest.skip("without a filesystem restriction the home is readable")
    tmp_in_home = host.fake_home / "tmp"
    tmp_in_home.mkdir()
    tmp_in_home.chmod(0o777)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_in_home))
    code = (
        "open('mine.txt', 'w').write('ok')\n"
        "print(open('mine.txt').read())\n"
        "try:\n"
        f"    print(open({str(host.fake_home / '.ssh' / 'id_ed25519')!r}).read())\n"
        "except OSError:\n"
        "    print('DENIED')\n"
    )
    r = run_python(code, timeout_s=10)
    assert r.status == "ok", r
    assert r.stdout.split() == ["ok", "DENIED"]
    assert list(tmp_in_home.iterdir()) == []  # removed afterwards


def test_working_directory_size_is_capped() -> None:
    if sandbox.filesystem_isolation() != "readonly":
        pytest.skip("the size cap needs the readonly mode's tmpfs working directory")
    code = (
        "import errno\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        open(f'f{n}', 'wb').write(b'x' * 1024 * 1024)\n"
        "        n += 1\n"
        "except OSError as e:\n"
        "    print('FULL', n, errno.errorcode[e.errno])\n"
    )
    r = run_python(code, timeout_s=20, max_disk_mb=8, max_file_mb=4)
    assert r.status == "ok", r
    full, n, err = r.stdout.split()
    assert full == "FULL" and int(n) <= 8 and err == "ENOSPC"
