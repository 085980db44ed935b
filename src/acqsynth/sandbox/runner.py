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
- the code runs without privileges: as `nobody` when the caller is root, else without capabilities;
- rlimits set in the child before exec: CPU seconds, address space, file size, open files, no core
  files and the process count;
- a scrubbed environment (no inherited variables, so no secrets) and a throw-away working directory
  removed afterwards;
- stdout/stderr read with a byte cap; the process group is killed as soon as the cap is exceeded.

It is not a kernel security boundary: for hostile workloads run the grader in a container or VM.
`isolation()` reports which mode of each layer is in use.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import resource
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "error", "timeout", "memory", "output_limit", "killed"]

ISOLATION_ENV = "ACQSYNTH_SANDBOX_NETWORK"
"""Set to `socket-block` to force the fallback isolation even where network namespaces work."""

FS_ENV = "ACQSYNTH_SANDBOX_FILESYSTEM"
"""Set to `none` to turn off the read-only filesystem view (the code may then write anywhere its user can)."""

NOBODY = 65534
"""The uid and gid sandboxed code runs as when the caller is root."""

_NS_FLAGS = ("--pid", "--ipc", "--fork", "--kill-child", "--mount-proc")
_READ_CHUNK = 65536
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
      stays writable; then the code runs without capabilities (as `nobody` when the caller is root).
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
def _nobody_can_run() -> bool:
    """Can `nobody` start this Python and import from its standard library (not so if it lives in /root)?"""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", "import json, encodings.idna"],
            cwd="/",
            env=_clean_env("/"),
            user=NOBODY,
            group=NOBODY,
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
    """How the boot gives up privileges: `nobody` (root caller whose Python nobody can run, or the
    jail, which re-exposes Python's directories) or `caps` (keep the uid, drop every capability)."""
    return "nobody" if os.getuid() == 0 and (jail or _nobody_can_run()) else "caps"


def isolation() -> dict[str, str]:
    """Every isolation mode in use on this machine, for logs and reports."""
    fs = filesystem_isolation()
    return {
        "network": network_isolation(),
        "processes": process_isolation(),
        "filesystem": fs,
        "user": "nobody" if _drop_mode(fs == "readonly") == "nobody"
        else "root-without-capabilities" if os.getuid() == 0 else "caller-without-capabilities",
    }


def process_isolation() -> Literal["pidns", "pgroup"]:
    """How leftover processes are cleaned up: a PID namespace (all die with the code) or a process group."""
    return "pidns" if network_isolation() == "netns" else "pgroup"


# ------------------------------------------------------------------------------------------------
# The boot script: runs inside the sandboxed interpreter before the user's code.

_SOCKET_HOOK = r"""
def _acq_install_net_block():
    import socket as _so
    _unix = getattr(_so, "AF_UNIX", 1)
    _lookup = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
               "socket.gethostbyaddr", "socket.getnameinfo")
    def _hook(event, args):
        if not event.startswith("socket."):
            return
        if event == "socket.__new__":
            if args[1] != _unix:
                raise PermissionError("network access is disabled in the acqsynth sandbox")
        elif event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            if getattr(args[0], "family", None) != _unix:
                raise PermissionError("network access is disabled in the acqsynth sandbox")
        elif event in _lookup:
            raise PermissionError("network access is disabled in the acqsynth sandbox")
    sys.addaudithook(_hook)
_acq_install_net_block()
del _acq_install_net_block
"""

_JAIL = r"""
def _acq_jail(workdir, drop, home, disk_mb):
    # Runs as (namespace) root in the sandbox's fresh mount namespace, before the code's process forks.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    def mount(src, tgt, fstype, flags, data=None):
        enc = lambda x: None if x is None else x.encode()
        if libc.mount(enc(src), enc(tgt), enc(fstype), flags, enc(data)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), tgt)
    RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, REC, PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
    KEEP = ((2, NOSUID), (4, NODEV), (8, NOEXEC), (1024, 1024), (2048, 2048), (4096, 1 << 21))
    def under(path, top):
        return path == top or path.startswith(top.rstrip("/") + "/")
    def mount_points():
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            return [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]) for line in f]
    with open(os.path.join(workdir, "main.py"), "rb") as f:
        source = f.read()
    mount(None, "/", None, REC | PRIVATE)
    wanted = {*sys.path, sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    wanted = sorted(os.path.realpath(p) for p in wanted if p and os.path.isdir(p))
    keep = [p for i, p in enumerate(wanted) if not any(under(p, q) for q in wanted[:i])]
    # Homes hold secrets; the temp parent holds other candidates' working directories.
    hidden = {os.path.realpath(h) for h in ("/root", "/home", home, os.path.dirname(workdir)) if h}
    hidden = sorted(h for h in hidden if h != "/" and os.path.isdir(h))
    hidden = [h for i, h in enumerate(hidden) if not any(under(h, q) for q in hidden[:i])]
    for top in hidden:
        fds = [(k, os.open(k, os.O_RDONLY | os.O_DIRECTORY)) for k in keep if under(k, top)]
        mount("tmpfs", top, "tmpfs", NOSUID | NODEV, "size=64k,mode=755")
        for k, fd in fds:
            os.makedirs(k, exist_ok=True)
            mount("/proc/self/fd/%d" % fd, k, None, BIND | REC)
            os.close(fd)
    # The working directory: a fresh tmpfs capped in size and inodes (gone with the namespace).
    os.makedirs(workdir, exist_ok=True)
    owner = ",uid=65534,gid=65534" if drop == "nobody" else ""
    mount("tmpfs", workdir, "tmpfs", NOSUID | NODEV, "size=%dm,nr_inodes=16384,mode=700%s" % (disk_mb, owner))
    with open(os.path.join(workdir, "main.py"), "wb") as f:
        f.write(source)
    if drop == "nobody":
        os.chown(os.path.join(workdir, "main.py"), 65534, 65534)
    for point in mount_points():
        if point == workdir or under(point, "/proc"):
            continue
        try:
            have = os.statvfs(point).f_flag
        except OSError:
            continue  # a mount point hidden under a tmpfs above: unreachable
        flags = REMOUNT | BIND | RDONLY
        for st, ms in KEEP:
            flags |= ms if have & st else 0
        try:
            mount(None, point, None, flags)
        except OSError:
            pass
    for point in mount_points():  # fail closed: every reachable mount but the working directory is read-only
        if point == workdir or under(point, "/proc"):
            continue
        try:
            writable = not os.statvfs(point).f_flag & 1
        except OSError:
            continue
        if writable:
            raise OSError("could not make %s read-only" % point)
    os.chdir(workdir)
    _acq_drop(drop)
import re
_acq_jail(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
del _acq_jail, re
"""

_DROP = r"""
def _acq_drop(drop):
    # Give up privileges for good: become nobody, or keep the uid and drop every capability.
    import ctypes, struct
    libc = ctypes.CDLL(None, use_errno=True)
    if drop == "nobody":
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    elif drop == "caps":
        for cap in range(64):
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
        header = ctypes.create_string_buffer(struct.pack("Ii", 0x20080522, 0))
        if libc.capset(header, ctypes.create_string_buffer(24)) != 0:
            raise OSError(ctypes.get_errno(), "capset failed")
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "no_new_privs failed")
"""

_LANDLOCK = r"""
def _acq_landlock(workdir, drop, home, disk_mb):
    # Landlock (unprivileged, kernel >= 5.13): reads everywhere but the homes, writes only in the
    # working directory, no TCP bind/connect (ABI 4+), no signals or abstract sockets outside (ABI 6+).
    import ctypes, struct
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, 0, 1)
    if abi < 1:
        raise OSError(ctypes.get_errno(), "Landlock is not available")
    fs = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
    file_rights = fs & (1 | 2 | 4 | 1 << 14 | 1 << 15)
    attr = struct.pack("QQQ", fs, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)[: 24 if abi >= 6 else 16 if abi >= 4 else 8]
    ruleset = libc.syscall(444, attr, len(attr), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    def allow(path, access):
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not os.path.isdir(path):
                access &= file_rights
            if libc.syscall(445, ruleset, 1, struct.pack("=Qi", access, fd), 0) != 0:
                raise OSError(ctypes.get_errno(), "landlock_add_rule failed", path)
        finally:
            os.close(fd)
    def under(path, top):
        return path == top or path.startswith(top.rstrip("/") + "/")
    # Homes hold secrets; the temp parent holds other candidates' working directories. The working
    # directory's own rule grants it even when it lies under a hidden directory.
    hidden = {os.path.realpath(h) for h in ("/root", "/home", home, os.path.dirname(workdir)) if h}
    hidden = {h for h in hidden if h != "/"}
    read = 1 | 4 | 8  # execute, read file, read directory
    def walk(directory):
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            real = os.path.realpath(path)  # a rule applies to the target: a symlink must not reopen a home
            if any(under(real, h) for h in hidden):
                continue
            if any(under(h, real) for h in hidden):
                if real == path and os.path.isdir(path):
                    walk(path)
                continue
            allow(path, read)
    walk("/")
    wanted = {*sys.path, sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for path in wanted:
        if path and os.path.isdir(path):
            allow(os.path.realpath(path), read)
    allow(workdir, fs)
    for dev in ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty"):
        allow(dev, 2 | 4)
    libc.unshare(0x08000000)  # CLONE_NEWIPC: a private SysV IPC namespace where still privileged
    _acq_drop(drop)
    if libc.syscall(446, ruleset, 0) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    os.close(ruleset)
_acq_landlock(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
del _acq_landlock
"""

_BOOT = r"""
import os, sys
_acq_fd = int(sys.argv[1])
__FS__
import ctypes as _acq_ct
_acq_ct.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come back to the monitor
_acq_pid = os.fork()
if _acq_pid:
    # Monitor: wait for the code's process, kill and reap whatever it left, report its wait status and
    # CPU time, exit like it. Not dumpable, so the code cannot reach its pipe through /proc.
    _acq_ct.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    import signal, time
    while True:
        try:
            _, _st, _ru = os.wait4(_acq_pid, 0)
            break
        except InterruptedError:
            continue
    _me, _end = os.getpid(), time.monotonic() + 2
    while time.monotonic() < _end:
        _kids = []
        for _p in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % _p, "rb") as _f:
                    _stat = _f.read()
                if int(_stat[_stat.rindex(b")") + 2:].split()[1]) == _me:
                    _kids.append(int(_p))
            except (OSError, ValueError, IndexError):
                continue
        for _k in _kids:
            try:
                os.kill(_k, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            if not _kids:
                break
        time.sleep(0.005)
    try:
        os.write(_acq_fd, ("%d %.6f\n" % (_st, _ru.ru_utime + _ru.ru_stime)).encode())
    except OSError:
        pass
    os._exit(os.WEXITSTATUS(_st) if os.WIFEXITED(_st) else 128 + os.WTERMSIG(_st))
os.close(_acq_fd)
del _acq_fd, _acq_pid, _acq_ct
__SOCKET_HOOK__
sys.argv = ["main.py"]
with open("main.py", encoding="utf-8") as _acq_f:
    _acq_src = _acq_f.read()
del _acq_f
exec(compile(_acq_src, "main.py", "exec"),
     {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__})
"""


_NO_FS = r"""
_acq_drop(sys.argv[3])
"""


def _boot_script(block_sockets: bool, fs: str) -> str:
    chunk = _DROP + {"readonly": _JAIL, "landlock": _LANDLOCK}.get(fs, _NO_FS)
    return _BOOT.replace("__SOCKET_HOOK__", _SOCKET_HOOK if block_sockets else "").replace("__FS__", chunk)


# ------------------------------------------------------------------------------------------------
# Limits


def _user_task_count(uid: int) -> int:
    """Processes+threads owned by `uid` now (RLIMIT_NPROC counts these for the whole user)."""
    n = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                n += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
    return n


def _make_preexec(cpu_s: int, memory_mb: int, max_file_mb: int, nproc: int | None):
    """A preexec_fn that only calls setrlimit (safe enough to run between fork and exec)."""

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        fsize = max_file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        if nproc is not None:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return preexec


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
) -> SandboxResult:
    """Execute `code` as `__main__` in a fresh, limited `python -I` process and report what happened.

    `timeout_s` bounds wall-clock time; `cpu_s` (default: timeout + 1) bounds CPU seconds of each
    process; `memory_mb` is the address-space limit; `max_output_bytes` caps stdout and stderr each;
    `max_processes` is added to the sandbox user's current task count for RLIMIT_NPROC;
    `max_file_mb` caps the size of any file written; `max_disk_mb` caps the working directory as a
    whole (in `readonly` mode, where it is a tmpfs); `network=False` isolates. Stdin is empty. The
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
    nproc = _user_task_count(NOBODY if drop == "nobody" else os.getuid()) + max_processes

    workdir = os.path.realpath(tempfile.mkdtemp(prefix="acqsynth-sandbox-"))
    status_r, status_w = os.pipe()
    start = time.monotonic()
    try:
        os.chmod(workdir, 0o700)
        main = os.path.join(workdir, "main.py")
        with open(main, "w", encoding="utf-8") as f:
            f.write(code)
        if drop == "nobody":
            os.chown(workdir, NOBODY, NOBODY)
            os.chown(main, NOBODY, NOBODY)
        boot = _boot_script(block_sockets, fs)
        argv = [*prefix, "--", sys.executable, "-I", "-B", "-X", "utf8", "-c", boot, str(status_w)]
        if not prefix:
            argv = argv[1:]
        argv += [workdir, drop, _caller_home(), str(max_disk_mb)]
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=_clean_env(workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=(status_w,),
            preexec_fn=_make_preexec(cpu_limit, memory_mb, max_file_mb, nproc),
        )
        os.close(status_w)
        status_w = -1
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
    out: _Outcome, child: tuple[int, float] | None, wall: float, cpu_limit: int, cap: int
) -> SandboxResult:
    stdout = out.stdout.decode("utf-8", errors="replace")
    stderr = out.stderr.decode("utf-8", errors="replace")
    rc: int | None = out.returncode
    signum: int | None = None
    cpu = None
    if child is not None:
        st, cpu = child
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
    if child is None and rc is not None and rc != 0:
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
