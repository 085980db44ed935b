"""Run untrusted Python (a student's code answer) in a separate, resource-limited, network-less process.

Why: grading code means executing text a model wrote. It may loop forever, allocate 10 GB, print
forever, fork children that outlive it, or try the network. `run_python` executes it in a fresh
`python -I` subprocess and always returns a `SandboxResult`; it never executes the code in the host
process and never raises because of what the code did.

Layers of protection (the threat model is in docs/security.md):
- a new session / process group, killed as a whole (SIGKILL) on timeout, output overflow and exit;
- where `unshare` works (root, or unprivileged user namespaces): new network namespace (no
  interfaces but a down loopback, so nothing is reachable), new PID namespace (everything the code
  started dies with it, even processes that called setsid), a private /proc (host processes and
  their environments are invisible) and a private mount namespace in which the whole filesystem is
  read-only and home directories are hidden, the working directory excepted. Otherwise a
  socket-blocking audit hook is installed instead;
- the code runs without privileges: as a uid of its own (`SANDBOX_UIDS`, one per concurrent run) when
  the caller is root, else without capabilities;
- rlimits, set by the sandboxed interpreter before anything else (and before privileges drop): CPU
  seconds, address space, file size, open files, no core files and the process count;
- a scrubbed environment (no inherited variables, so no secrets) and a throw-away working directory
  removed afterwards;
- stdout/stderr read with a byte cap; the process group is killed as soon as the cap is exceeded.

It is not a kernel security boundary: for hostile workloads run the grader in a container or VM.
`isolation()` reports which mode of each layer is in use. What runs inside the sandboxed interpreter
(filesystem view, privilege drop, socket hook, the monitor and its status pipe) is `child.py`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import math
import os
import re
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from acqsynth.errors import AcqsynthError
from acqsynth.sandbox import child

Status = Literal["ok", "error", "timeout", "memory", "output_limit", "killed"]

ISOLATION_ENV = "ACQSYNTH_SANDBOX_NETWORK"
"""Set to `socket-block` to force the fallback isolation even where network namespaces work."""

FS_ENV = "ACQSYNTH_SANDBOX_FILESYSTEM"
"""Set to `none` to turn off the read-only filesystem view (the code may then write anywhere its user can)."""

SANDBOX_UIDS = child.SANDBOX_UIDS
"""The uids sandboxed code of a root caller runs as: each run claims one no other run holds."""

_NS_FLAGS = ("--pid", "--ipc", "--fork", "--kill-child", "--mount-proc")
_READ_CHUNK = 65536
_STDIN_MAX = 65536
_DRAIN_GRACE_S = 0.5


@dataclass(frozen=True)
class SandboxResult:
    """What happened when a piece of code ran in the sandbox."""

    status: Status
    """ok (exit 0), error (non-zero exit), timeout (wall or CPU limit), memory (MemoryError / address
    space limit), output_limit (stdout or stderr exceeded the cap; process killed), killed (died from
    a signal the sandbox did not send, e.g. SIGSEGV)."""
    returncode: int | None
    """Exit code of the code's process; -N when it died from signal N; None if unknown."""
    stdout: str
    """Standard output, decoded as UTF-8 (invalid bytes replaced), at most the byte cap."""
    stderr: str
    """Standard error, decoded likewise and capped likewise."""
    wall_s: float
    """Wall-clock seconds from start to the end of the process."""
    detail: str = ""
    """A human-readable note on limits hit or the signal received."""

    @property
    def ok(self) -> bool:
        """True when the code exited normally with status 0."""
        return self.status == "ok"


# ------------------------------------------------------------------------------------------------
# Isolation mode detection


@functools.lru_cache(maxsize=1)
def _unshare_prefix() -> tuple[str, ...] | None:
    """The `unshare` command prefix that works on this machine (net+pid+mount namespaces), or None."""
    exe = shutil.which("unshare") or shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if exe is None:
        return None
    for user in ((), ("--map-root-user",)):
        prefix = (exe, *user, "--net", *_NS_FLAGS)
        try:
            done = subprocess.run(
                [*prefix, "--", sys.executable, "-I", "-c", "pass"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return prefix
    return None


def network_isolation() -> Literal["netns", "socket-block"]:
    """How `network=False` is enforced here: a fresh network namespace, or a socket-blocking audit hook.

    `netns` needs `unshare` (util-linux) and either root or unprivileged user namespaces. The
    fallback blocks Python-level sockets (creation of non-Unix sockets, connect, bind, DNS) with an
    audit hook that the code cannot remove, but it does not stop ctypes or non-Python child programs.
    Setting the environment variable ACQSYNTH_SANDBOX_NETWORK=socket-block forces the fallback.
    """
    if os.environ.get(ISOLATION_ENV, "").strip().lower() == "socket-block":
        return "socket-block"
    return "netns" if _unshare_prefix() is not None else "socket-block"


_FS_PROBE = """
import os
outside = os.path.join(os.path.dirname(os.getcwd()), os.path.basename(os.getcwd()) + "-escape")
try:
    open(outside, "w").close()
    print("WRITABLE-OUTSIDE", outside)
except OSError:
    print("READONLY-OUTSIDE")
open("inside.txt", "w").write("ok")
print("WRITABLE-INSIDE")
"""


FilesystemMode = Literal["readonly", "landlock", "none"]


@functools.lru_cache(maxsize=2)
def _fs_works(fs: FilesystemMode) -> bool:
    """Probe once per mode: does this filesystem restriction build here, leaving the working directory writable?"""
    result = run_python(_FS_PROBE, timeout_s=20, filesystem=fs)
    for line in result.stdout.splitlines():  # a failed restriction must not leave the probe's file behind
        if line.startswith("WRITABLE-OUTSIDE "):
            with contextlib.suppress(OSError):
                os.unlink(line.split(" ", 1)[1])
    return result.ok and "READONLY-OUTSIDE" in result.stdout and "WRITABLE-INSIDE" in result.stdout


def filesystem_isolation() -> FilesystemMode:
    """How the code is kept from writing outside its working directory and from reading home directories.

    - `readonly` (namespace mode, `network_isolation() == "netns"`): in the sandbox's own mount
      namespace every mount is remounted read-only and `/root`, `/home` and the caller's `$HOME` are
      covered by empty tmpfs (Python's own directories re-appear read-only); the working directory
      stays writable; then the code runs without capabilities (as a sandbox uid when the caller is root).
    - `landlock` (fallback, kernel >= 5.13 with Landlock enabled): the same policy enforced by
      Landlock rules, plus no TCP connect/bind and no signals to processes outside the sandbox.
    - `none`: neither works here; the code can write wherever its user can.
    Setting ACQSYNTH_SANDBOX_FILESYSTEM=none turns both off.
    """
    if os.environ.get(FS_ENV, "").strip().lower() == "none":
        return "none"
    if network_isolation() == "netns" and _fs_works("readonly"):
        return "readonly"
    return "landlock" if _fs_works("landlock") else "none"


@functools.lru_cache(maxsize=1)
def _sandbox_uid_can_run() -> bool:
    """Can a sandbox uid start this Python and import from its standard library (not so if it lives in
    /root, or where the uid is not mapped into this user namespace)?"""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", "import json, encodings.idna"],
            cwd="/",
            env=_clean_env("/"),
            user=SANDBOX_UIDS[0],
            group=SANDBOX_UIDS[0],
            extra_groups=[],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _drop_mode(jail: bool) -> str:
    """How the boot gives up privileges: `uid` (a root caller becomes one of `SANDBOX_UIDS` where such a
    uid can run this Python, or in the jail, which re-exposes Python's directories) or `caps` (keep
    the uid, drop every capability)."""
    return "uid" if os.getuid() == 0 and (jail or _sandbox_uid_can_run()) else "caps"


@contextlib.contextmanager
def claim_uid(wait_s: float = 120.0) -> Iterator[int]:
    """One of `SANDBOX_UIDS` that no other sandbox of any process on this machine holds, until the block
    ends (an flock on a file per uid in one root-owned folder for the whole machine, whatever TMPDIR
    says; a crashed holder releases it). Processes a previous holder left behind (possible without a
    PID namespace) are killed first. Waits up to `wait_s` while all are taken."""
    folder = Path("/run" if os.path.isdir("/run") else "/tmp") / "acqsynth-sandbox-uids"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise AcqsynthError(f"{folder} must be a directory owned by this user with mode 0700 (it holds the "
                            "sandbox uid locks); remove it and run again")
    deadline = time.monotonic() + wait_s
    while True:
        for uid in SANDBOX_UIDS:
            fd = os.open(folder / str(uid), os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                if process_isolation() != "pidns":  # in a PID namespace nothing outlives its run
                    _kill_uid(uid)
                yield uid
            finally:
                os.close(fd)  # releases the lock
            return
        if time.monotonic() > deadline:
            raise AcqsynthError(f"all {len(SANDBOX_UIDS)} sandbox uids stayed busy for {wait_s:.0f} s: fewer "
                                "concurrent sandboxes, please")
        time.sleep(0.01)


def _uid_pids(uid: int) -> list[int]:
    """The processes owned by `uid` now."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
    return pids


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` (a sandbox uid no run holds now, so anything of it is a leftover)."""
    for pid in _uid_pids(uid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def isolation() -> dict[str, str]:
    """Every isolation mode in use on this machine, for logs and reports."""
    fs = filesystem_isolation()
    return {
        "network": network_isolation(),
        "processes": process_isolation(),
        "filesystem": fs,
        "user": "sandbox-uid" if _drop_mode(fs == "readonly") == "uid"
        else "root-without-capabilities" if os.getuid() == 0 else "caller-without-capabilities",
    }


def process_isolation() -> Literal["pidns", "pgroup"]:
    """How leftover processes are cleaned up: a PID namespace (all die with the code) or a process group."""
    return "pidns" if network_isolation() == "netns" else "pgroup"


# ------------------------------------------------------------------------------------------------
# The child program (child.py) runs inside the sandboxed interpreter before the user's code.


@functools.lru_cache(maxsize=1)
def _child_source() -> str:
    """child.py's text, passed with `-c`: the child never imports or opens a file of this package."""
    return Path(child.__file__).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# Limits


def _user_task_count(uid: int) -> int:
    """Processes+threads owned by `uid` now (RLIMIT_NPROC counts these for the whole user)."""
    n = 0
    for pid in _uid_pids(uid):
        with contextlib.suppress(OSError):  # gone since
            n += len(os.listdir(f"/proc/{pid}/task"))
    return n


def _caller_home() -> str:
    """The caller's home directory (hidden from the code), from $HOME or the password database."""
    home = os.environ.get("HOME") or os.path.expanduser("~")
    return os.path.realpath(home) if home else ""


def _clean_env(workdir: str) -> dict[str, str]:
    """A minimal environment: nothing inherited from the caller, so no tokens or keys leak in."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": workdir,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _rmtree(path: str) -> None:
    """Remove the working directory; never raises, never follows a symlink, never recurses deeply.

    The code may have made directories unwritable (a non-root caller then restores its own
    permission bits on directories inside, found without following symlinks) or nested them
    thousands deep (shutil.rmtree recurses; `rm -rf` does not)."""
    for attempt in range(2):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except (OSError, RecursionError):
            if attempt == 0 and os.getuid() != 0:
                _unlock_dirs(path)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["rm", "-rf", "--", path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120, check=False)


def _unlock_dirs(root: str) -> None:
    """Give the owner rwx back on every real directory under `root` (iteratively; symlinks skipped)."""
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            if not stat.S_ISDIR(os.lstat(d).st_mode):
                continue
            os.chmod(d, 0o700)
            with os.scandir(d) as entries:
                stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


# ------------------------------------------------------------------------------------------------
# Running


def run_python(
    code: str,
    *,
    timeout_s: float = 10,
    cpu_s: float | None = None,
    memory_mb: int = 1024,
    max_output_bytes: int = 1_000_000,
    max_processes: int = 64,
    max_file_mb: int = 16,
    max_disk_mb: int = 64,
    network: bool = False,
    filesystem: FilesystemMode | None = None,
    stdin: bytes = b"",
) -> SandboxResult:
    """Execute `code` as `__main__` in a fresh, limited `python -I` process and report what happened.

    `timeout_s` bounds wall-clock time; `cpu_s` (default: timeout + 1) bounds CPU seconds of each
    process; `memory_mb` is the address-space limit; `max_output_bytes` caps stdout and stderr each;
    `max_processes` is added to the sandbox user's current task count for RLIMIT_NPROC;
    `max_file_mb` caps the size of any file written; `max_disk_mb` caps the working directory as a
    whole (in `readonly` mode, where it is a tmpfs); `network=False` isolates. `stdin` (at most 64 KiB,
    what one pipe buffer holds) is what the code reads from standard input, then end of file. The
    working directory is a fresh temp dir, removed afterwards; where `filesystem_isolation()` is
    `readonly` it is the only writable place. `filesystem` forces a mode instead of the best one
    that works here (`filesystem_isolation()`); it is for probes and tests: a forced mode is not
    checked, and `readonly` without the namespace mode becomes `landlock`.
    """
    fs: str = filesystem_isolation() if filesystem is None else filesystem
    cpu_limit = max(1, math.ceil(cpu_s if cpu_s is not None else timeout_s + 1))
    isolation = network_isolation()
    prefix: tuple[str, ...] = ()
    if isolation == "netns":
        full = _unshare_prefix() or ()
        prefix = full if not network else tuple(f for f in full if f != "--net")
    if fs == "readonly" and isolation != "netns":
        fs = "landlock"
    jail = fs == "readonly"
    block_sockets = not network and isolation == "socket-block"
    drop = _drop_mode(jail)
    with contextlib.ExitStack() as stack:
        uid = stack.enter_context(claim_uid()) if drop == "uid" else os.getuid()
        return _run(code, timeout_s, cpu_limit, memory_mb, max_output_bytes, max_file_mb, max_disk_mb, prefix, fs,
                    block_sockets, drop, uid, _user_task_count(uid) + max_processes, stdin)


def _run(code: str, timeout_s: float, cpu_limit: int, memory_mb: int, max_output_bytes: int, max_file_mb: int,
         max_disk_mb: int, prefix: tuple[str, ...], fs: str, block_sockets: bool, drop: str, uid: int, nproc: int,
         stdin: bytes) -> SandboxResult:

    if len(stdin) > _STDIN_MAX:
        raise ValueError(f"stdin: at most {_STDIN_MAX} bytes, got {len(stdin)}")
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="acqsynth-sandbox-"))
    status_r, status_w = os.pipe()
    start = time.monotonic()
    try:
        os.chmod(workdir, 0o700)
        main = os.path.join(workdir, "main.py")
        with open(main, "w", encoding="utf-8") as f:
            f.write(code)
        if drop == "uid":
            os.chown(workdir, uid, uid)
            os.chown(main, uid, uid)
        argv = [*prefix, "--", sys.executable, "-I", "-B", "-X", "utf8", "-c", _child_source(),
                *child.arguments(status_w, workdir, drop, _caller_home(), max_disk_mb, fs, block_sockets, uid,
                                 (cpu_limit, memory_mb, max_file_mb, nproc))]
        if not prefix:
            argv = argv[1:]
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=_clean_env(workdir),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=(status_w,),
        )
        os.close(status_w)
        status_w = -1
        if stdin:
            assert proc.stdin is not None
            try:
                proc.stdin.write(stdin)  # fits the pipe buffer: never blocks
                proc.stdin.close()
            except BrokenPipeError:  # the code exited before reading it
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        outcome = _supervise(proc, timeout_s, max_output_bytes)
        wall = time.monotonic() - start
        child_status = _read_status(status_r, outcome.returncode)
    finally:
        if status_w >= 0:
            os.close(status_w)
        os.close(status_r)
        _rmtree(workdir)
    return _classify(outcome, child_status, wall, cpu_limit, max_output_bytes)


@dataclass
class _Outcome:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    overflow: str | None


def _supervise(proc: subprocess.Popen, timeout_s: float, cap: int) -> _Outcome:
    """Read both pipes with a cap until the process ends; kill its group on timeout or overflow."""
    assert proc.stdout is not None and proc.stderr is not None
    bufs: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    deadline = time.monotonic() + timeout_s
    drain_until: float | None = None
    timed_out = False
    overflow: str | None = None
    try:
        while True:
            now = time.monotonic()
            if drain_until is None:
                if proc.poll() is not None:
                    # The code's process is gone: kill whatever it left behind, then drain the pipes.
                    _killpg(proc.pid)
                    drain_until = now + _DRAIN_GRACE_S
                elif now >= deadline:
                    timed_out = True
                    _killpg(proc.pid)
                    drain_until = now + _DRAIN_GRACE_S
            if drain_until is not None and (now >= drain_until or not sel.get_map()):
                break
            wait = min(0.05, max(0.0, (drain_until or deadline) - now))
            if not sel.get_map():  # both pipes closed by the code, which may still be running
                time.sleep(min(wait, 0.005))
                continue
            for key, _ in sel.select(timeout=wait):
                name = key.data
                chunk = os.read(key.fd, _READ_CHUNK)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = bufs[name]
                room = cap - len(buf)
                buf += chunk[: max(0, room)]
                if len(chunk) > room and overflow is None:
                    overflow = name
                    _killpg(proc.pid)
                    if drain_until is None:
                        drain_until = time.monotonic() + _DRAIN_GRACE_S
    finally:
        sel.close()
        _killpg(proc.pid)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return _Outcome(proc.returncode, bytes(bufs["stdout"]), bytes(bufs["stderr"]), timed_out, overflow)


def _read_status(fd: int, returncode: int | None) -> tuple[int, float] | None:
    """The monitor's report: (wait status, CPU seconds) of the code's process, if it got to write one.

    Anything but one well-formed line that agrees with how the monitor exited is ignored."""
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 256).decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None
    m = re.fullmatch(r"(\d{1,10}) (\d{1,9}\.\d{6})\n", data)
    if m is None:
        return None
    st = int(m.group(1))
    if not (os.WIFEXITED(st) or os.WIFSIGNALED(st)):
        return None
    expected = os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)
    if returncode is not None and returncode >= 0 and returncode != expected:
        return None
    return st, float(m.group(2))


_MEMORY_ERROR = re.compile(r"^MemoryError\b", re.MULTILINE)


def _classify(
    out: _Outcome, report: tuple[int, float] | None, wall: float, cpu_limit: int, cap: int
) -> SandboxResult:
    stdout = out.stdout.decode("utf-8", errors="replace")
    stderr = out.stderr.decode("utf-8", errors="replace")
    rc: int | None = out.returncode
    signum: int | None = None
    cpu = None
    if report is not None:
        st, cpu = report
        rc = os.waitstatus_to_exitcode(st)
        signum = -rc if rc < 0 else None
    elif rc is not None and rc < 0:
        signum = -rc

    def result(status: Status, detail: str = "") -> SandboxResult:
        return SandboxResult(status, rc, stdout, stderr, round(wall, 4), detail)

    if out.overflow is not None:
        return result("output_limit", f"{out.overflow} exceeded {cap} bytes; process group killed")
    if out.timed_out:
        return result("timeout", f"wall-clock limit of {wall:.1f}s reached; process group killed")
    if signum == signal.SIGXCPU or (cpu is not None and signum is not None and cpu >= cpu_limit - 0.05):
        return result("timeout", f"CPU limit of {cpu_limit}s reached")
    if rc == 0:
        return result("ok")
    if _MEMORY_ERROR.search(stderr):
        return result("memory", "MemoryError (address-space limit)")
    if signum is not None:
        return result("killed", f"died from {_signal_name(signum)}")
    if report is None and rc is not None and rc != 0:
        return result("killed", "the sandbox monitor did not report (killed from outside?)")
    return result("error", f"exit code {rc}")


def run_many(codes: Sequence[str], max_workers: int = 2, **limits: object) -> list[SandboxResult]:
    """Run several programs concurrently (threads, each driving one sandboxed process); results in order.

    `limits` are `run_python`'s keyword arguments, applied to every program.
    """
    if not codes:
        return []
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        return list(pool.map(lambda c: run_python(c, **limits), codes))  # type: ignore[arg-type]


def new_token() -> str:
    """A random marker a grader can print after its tests, to tell 'tests ran to the end' from an early exit."""
    return "ACQSYNTH-" + secrets.token_hex(12)
