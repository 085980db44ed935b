"""The sandbox's child program: it runs inside the sandboxed interpreter, before and around the code.

`runner.run_python` starts `python -I -B -X utf8 -c <the source text of this file> STATUS_FD WORKDIR
DROP HOME DISK_MB FILESYSTEM SOCKETS` (`arguments` builds the tail, `parse_args` reads it back). The
program then
1. restricts the filesystem (`mount_jail` in the `readonly` mode, `landlock` in the `landlock`
   mode) and gives up privileges for good (`drop_privileges`);
2. forks. The parent becomes the monitor (`monitor`): it waits for the code's process, kills what it
   left behind and reports the code's wait status and CPU time on STATUS_FD. The child closes
   STATUS_FD, installs the socket-blocking audit hook (`socket_hook`, SOCKETS=block) and runs
   main.py as `__main__`.

Why the runner passes this file's text with `-c` instead of running `import acqsynth...` or the
file's path:
- the child never opens a file of this package, so it runs the same whether or not `acqsynth` is
  importable in isolated mode (a source tree on PYTHONPATH is not), imports nothing that the
  environment or the working directory could shadow, and does not depend on the filesystem view it
  builds (which hides home directories, where a source checkout may live);
- the host reads the text from its own installed package, as it reads any module it imports, and
  nothing else of the host (no variable, no path) reaches the child but the arguments above;
- tracebacks name `<string>`, never a path on the host, and the code's stack has one frame (the
  module-level `exec` at the end of this file) above its own.
The code may read this program (it is public, and visible in /proc as the interpreter's argv) and
call its functions in its own process, which gains it nothing; it cannot change what the monitor
does: that is a separate, non-dumpable process, and the code's process closes the status pipe
before the code starts. The token a grader prints is in main.py, never here.

Rules for this file: standard library only; nothing runs on import but definitions (the tests
import it); a module only one mode needs (`re` for the mount jail, `socket` for the hook) is
imported there, so the code's process loads no more than its mode needs; the text stays under
Linux's 128 KiB limit for one argument.
"""

from __future__ import annotations

import builtins
import ctypes
import os
import struct
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: the child stays small
    from collections.abc import Callable, Sequence
    from types import CodeType
    from typing import NoReturn

SANDBOX_UIDS = range(65000, 65064)
"""The uids (and gids) the code of a root caller runs as, one per concurrent sandbox, so that their
process limits (`RLIMIT_NPROC` counts per uid) and signals keep them apart: Debian's reserved
65000-65533 range, below `nobody`."""

# prctl(2) options and the capability ABI
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
LINUX_CAPABILITY_VERSION_3 = 0x20080522
CLONE_NEWIPC = 0x08000000
SIGKILL = 9  # signal.SIGKILL, without loading `signal` (and `enum`) into the monitor

# mount(2) flags, statvfs(3) flags, and which flag of a mount a read-only remount must keep
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_NOATIME, MS_NODIRATIME = 1, 2, 4, 8, 32, 1024, 2048
MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 1 << 12, 1 << 14, 1 << 18, 1 << 21
ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC, ST_NOATIME, ST_NODIRATIME, ST_RELATIME = 1, 2, 4, 8, 1024, 2048, 4096
KEEP_FLAGS = ((ST_NOSUID, MS_NOSUID), (ST_NODEV, MS_NODEV), (ST_NOEXEC, MS_NOEXEC), (ST_NOATIME, MS_NOATIME),
              (ST_NODIRATIME, MS_NODIRATIME), (ST_RELATIME, MS_RELATIME))

# Landlock: syscalls (the same number on every architecture) and access rights
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, 3, 5
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2  # ABI 6

NETWORK_DISABLED = "network access is disabled in the acqsynth sandbox"
_LOOKUPS = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
            "socket.gethostbyaddr", "socket.getnameinfo")


# ------------------------------------------------------------------------------------------------
# The command line


class Options:
    """What the runner tells the child: see `arguments`."""

    def __init__(self, status_fd: int, workdir: str, drop: str, home: str, disk_mb: int, filesystem: str,
                 block_sockets: bool, uid: int = -1, limits: tuple[int, int, int, int] = (0, 0, 0, 0)) -> None:
        self.status_fd = status_fd
        self.uid = uid
        self.limits = limits
        self.workdir = workdir
        self.drop = drop
        self.home = home
        self.disk_mb = disk_mb
        self.filesystem = filesystem
        self.block_sockets = block_sockets


def arguments(status_fd: int, workdir: str, drop: str, home: str, disk_mb: int, filesystem: str,
              block_sockets: bool, uid: int = -1, limits: tuple[int, int, int, int] = (0, 0, 0, 0)) -> list[str]:
    """The child's arguments after `-c <source>`.

    `status_fd` is the write end of the status pipe; `workdir` the working directory holding main.py;
    `drop` is `uid` or `caps` (see `drop_privileges`), `uid` the uid to become with `uid`; `limits`
    (CPU seconds, address space MB, file size MB, process count; 0 = not set) are set first (`set_limits`); `home` the caller's home directory (hidden);
    `disk_mb` the size of the working directory's tmpfs (readonly mode); `filesystem` is `readonly`,
    `landlock` or `none`; `block_sockets` installs the socket-blocking audit hook."""
    return [str(status_fd), workdir, drop, home, str(disk_mb), filesystem, "block" if block_sockets else "allow",
            str(uid), ",".join(map(str, limits))]


def parse_args(argv: Sequence[str]) -> Options:
    """`sys.argv` of the child (`-c`, then `arguments`' output) as Options."""
    _, status_fd, workdir, drop, home, disk_mb, filesystem, sockets, uid, limits = argv
    cpu, mem, fsize, nproc = (int(x) for x in limits.split(","))
    return Options(int(status_fd), workdir, drop, home, int(disk_mb), filesystem, sockets == "block", int(uid),
                   (cpu, mem, fsize, nproc))


# ------------------------------------------------------------------------------------------------
# Privileges


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def set_limits(cpu_s: int, memory_mb: int, file_mb: int, nproc: int) -> None:
    """The rlimits, hard = soft, set before anything else runs and before privileges are dropped (so the
    code cannot raise them). Set here rather than between the host's fork and exec: a preexec function
    forces a full fork of the host, which costs milliseconds per run in a host holding a model."""
    import resource

    if cpu_s:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    if memory_mb:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    if file_mb:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:  # noqa: SIM105 -- contextlib is not loaded into the child
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    except (ValueError, OSError):
        pass
    if nproc:
        try:  # noqa: SIM105
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        except (ValueError, OSError):
            pass


def drop_privileges(drop: str, uid: int = -1) -> None:
    """Give up privileges for good: become `uid` (its own group, no others; `drop` = `uid`), or (`caps`)
    keep the uid and drop every capability.

    Either way no_new_privs is set, so no later exec (setuid binary, file capabilities) gains any."""
    libc = _libc()
    if drop == "uid":
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    elif drop == "caps":
        for cap in range(64):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
        header = ctypes.create_string_buffer(struct.pack("Ii", LINUX_CAPABILITY_VERSION_3, 0))
        if libc.capset(header, ctypes.create_string_buffer(24)) != 0:  # two empty capability sets
            raise OSError(ctypes.get_errno(), "capset failed")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "no_new_privs failed")


# ------------------------------------------------------------------------------------------------
# Filesystem: the mount jail (readonly), Landlock (landlock), nothing (none)


def under(path: str, top: str) -> bool:
    """Is `path` `top` or inside it (by name, no file access)?"""
    return path == top or path.startswith(top.rstrip("/") + "/")


def outermost(paths: list[str]) -> list[str]:
    """The sorted `paths` without those inside an earlier one (and without repeats)."""
    return [p for i, p in enumerate(paths) if not any(under(p, q) for q in paths[:i])]


def python_dirs() -> set[str]:
    """The directories this interpreter needs to import its standard library and packages."""
    return {*sys.path, sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}


def hidden_dirs(workdir: str, home: str) -> set[str]:
    """What the code must not see: homes hold secrets, the temp parent other candidates' working directories."""
    hidden = {os.path.realpath(h) for h in ("/root", "/home", home, os.path.dirname(workdir)) if h}
    return {h for h in hidden if h != "/"}


def mount_point(line: str) -> str:
    """The mount point of one line of /proc/self/mountinfo, octal escapes (`\\040` for a space) decoded."""
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])


def mount_points() -> list[str]:
    """Every mount point in this mount namespace."""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [mount_point(line) for line in f]


def _cstr(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    if libc.mount(_cstr(source), _cstr(target), _cstr(fstype), flags, _cstr(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def mount_jail(opts: Options) -> None:
    """Filesystem mode `readonly`: in the sandbox's fresh mount namespace (where this process is root,
    before the code's process forks) make every mount read-only, cover the hidden directories with
    empty tmpfs (Python's own directories bound back in), give the working directory a fresh
    size-capped tmpfs holding main.py, check that nothing else stays writable, then drop privileges."""
    workdir = opts.workdir
    libc = _libc()
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    with open(os.path.join(workdir, "main.py"), "rb") as f:
        source = f.read()
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    keep = outermost(sorted(os.path.realpath(p) for p in python_dirs() if p and os.path.isdir(p)))
    hidden = outermost(sorted(h for h in hidden_dirs(workdir, opts.home) if os.path.isdir(h)))
    for top in hidden:
        fds = [(k, os.open(k, os.O_RDONLY | os.O_DIRECTORY)) for k in keep if under(k, top)]
        _mount(libc, "tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
        for k, fd in fds:
            os.makedirs(k, exist_ok=True)
            _mount(libc, f"/proc/self/fd/{fd}", k, None, MS_BIND | MS_REC)
            os.close(fd)
    # The working directory: a fresh tmpfs capped in size and inodes (gone with the namespace).
    os.makedirs(workdir, exist_ok=True)
    owner = f",uid={opts.uid},gid={opts.uid}" if opts.drop == "uid" else ""
    _mount(libc, "tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={opts.disk_mb:d}m,nr_inodes=16384,mode=700{owner}")
    with open(os.path.join(workdir, "main.py"), "wb") as f:
        f.write(source)
    if opts.drop == "uid":
        os.chown(os.path.join(workdir, "main.py"), opts.uid, opts.uid)
    for point in mount_points():
        if point == workdir or under(point, "/proc"):
            continue
        try:
            have = os.statvfs(point).f_flag
        except OSError:
            continue  # a mount point hidden under a tmpfs above: unreachable
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for st, ms in KEEP_FLAGS:
            flags |= ms if have & st else 0
        try:
            _mount(libc, None, point, None, flags)
        except OSError:
            continue  # checked below
    for point in mount_points():  # fail closed: every reachable mount but the working directory is read-only
        if point == workdir or under(point, "/proc"):
            continue
        try:
            writable = not os.statvfs(point).f_flag & ST_RDONLY
        except OSError:
            continue
        if writable:
            raise OSError(f"could not make {point} read-only")
    os.chdir(workdir)
    drop_privileges(opts.drop, opts.uid)


def landlock_rights(abi: int) -> tuple[int, int, bytes]:
    """(filesystem rights handled, those of them that apply to files, the ruleset attribute) for Landlock ABI `abi`.

    Every filesystem right the ABI knows is handled (denied unless a rule grants it); from ABI 4 TCP
    bind and connect (no rule grants them), from ABI 6 signals and abstract Unix sockets leaving the
    sandbox. The attribute is cut to the size the ABI knows."""
    fs = ((FS_REFER - 1) | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0)
          | (FS_IOCTL_DEV if abi >= 5 else 0))
    file_rights = fs & (FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV)
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    return fs, file_rights, struct.pack("QQQ", fs, net, scoped)[:size]


def landlock(opts: Options) -> None:
    """Filesystem mode `landlock` (unprivileged, kernel >= 5.13): read everywhere but the hidden
    directories, write only in the working directory, plus what `landlock_rights` adds; a private IPC
    namespace where still allowed; privileges dropped before the rules take effect."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        raise OSError(ctypes.get_errno(), "Landlock is not available")
    fs, file_rights, attr = landlock_rights(abi)
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, len(attr), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")

    def allow(path: str, access: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not os.path.isdir(path):
                access &= file_rights
            rule = struct.pack("=Qi", access, fd)
            if libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, rule, 0) != 0:
                raise OSError(ctypes.get_errno(), "landlock_add_rule failed", path)
        finally:
            os.close(fd)

    # The working directory's own rule grants it even when it lies under a hidden directory.
    hidden = hidden_dirs(opts.workdir, opts.home)
    read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR

    def walk(directory: str) -> None:
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
    for path in python_dirs():
        if path and os.path.isdir(path):
            allow(os.path.realpath(path), read)
    allow(opts.workdir, fs)
    for dev in ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty"):
        allow(dev, FS_WRITE_FILE | FS_READ_FILE)
    libc.unshare(CLONE_NEWIPC)  # a private SysV IPC namespace where still privileged
    drop_privileges(opts.drop, opts.uid)
    if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    os.close(ruleset)


def unrestricted(opts: Options) -> None:
    """Filesystem mode `none`: only drop privileges."""
    drop_privileges(opts.drop, opts.uid)


FILESYSTEM: dict[str, Callable[[Options], None]] = {"readonly": mount_jail, "landlock": landlock, "none": unrestricted}
"""Filesystem mode -> what sets it up (and drops privileges); an unknown mode gets `unrestricted`."""


# ------------------------------------------------------------------------------------------------
# Network fallback


def socket_hook() -> Callable[[str, tuple[object, ...]], None]:
    """An audit hook that refuses non-Unix sockets, connect/bind/send to non-Unix addresses and DNS lookups.

    For the `socket-block` mode, where no network namespace isolates; it cannot be removed once added."""
    import socket

    unix = getattr(socket, "AF_UNIX", 1)

    def hook(event: str, args: tuple[object, ...]) -> None:
        if not event.startswith("socket."):
            return
        if event == "socket.__new__":
            if args[1] != unix:
                raise PermissionError(NETWORK_DISABLED)
        elif event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            if getattr(args[0], "family", None) != unix:
                raise PermissionError(NETWORK_DISABLED)
        elif event in _LOOKUPS:
            raise PermissionError(NETWORK_DISABLED)

    return hook


# ------------------------------------------------------------------------------------------------
# The monitor


def parent_pid(stat: bytes) -> int:
    """The parent pid in the text of /proc/PID/stat (the command name in parentheses may hold anything)."""
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` now: from /proc/PID/task/PID/children where the kernel has it
    (the monitor has one thread), else by reading every process's parent (slow with many processes)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    kids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            if parent_pid(stat) == pid:
                kids.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return kids


def kill_leftovers(me: int, seconds: float = 2.0) -> None:
    """Kill and reap this process's children (orphans included: it is a subreaper) until none is left."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        kids = children_of(me)
        for kid in kids:
            try:
                os.kill(kid, SIGKILL)
            except OSError:
                continue  # gone already
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            if not kids:
                break
        time.sleep(0.005)


def status_line(status: int, cpu_s: float) -> bytes:
    """The monitor's report: the code's wait status and CPU seconds (`runner._read_status` parses it)."""
    return f"{status:d} {cpu_s:.6f}\n".encode()


def exit_code(status: int) -> int:
    """The exit code that mirrors a wait status: the code's own, or 128 + the signal that killed it."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def report(status_fd: int, status: int, cpu_s: float) -> bool:
    """Write the status line; False when the host no longer listens."""
    try:
        os.write(status_fd, status_line(status, cpu_s))
    except OSError:
        return False
    return True


def monitor(pid: int, status_fd: int) -> NoReturn:
    """The parent after the fork: wait for the code's process `pid`, kill and reap whatever it left,
    report its wait status and CPU time, exit like it. Not dumpable, so the code cannot reach the
    status pipe through /proc."""
    _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    kill_leftovers(os.getpid())
    report(status_fd, status, usage.ru_utime + usage.ru_stime)
    os._exit(exit_code(status))


# ------------------------------------------------------------------------------------------------
# The program


def main(argv: Sequence[str]) -> tuple[CodeType, dict[str, object]]:
    """Set up the sandbox and fork; in the code's process return main.py compiled and the globals to run it in.

    The monitor never returns. The caller runs the pair at module level, so that the code's stack
    starts one frame deep."""
    opts = parse_args(argv)
    set_limits(*opts.limits)
    FILESYSTEM.get(opts.filesystem, unrestricted)(opts)
    _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans come back to the monitor
    pid = os.fork()
    if pid:
        monitor(pid, opts.status_fd)
    os.close(opts.status_fd)
    if opts.block_sockets:
        sys.addaudithook(socket_hook())
    sys.argv = ["main.py"]
    with open("main.py", encoding="utf-8") as f:
        source = f.read()
    # dont_inherit: the code must not inherit this file's `from __future__ import annotations`
    code = compile(source, "main.py", "exec", dont_inherit=True)
    return code, {"__name__": "__main__", "__file__": "main.py", "__builtins__": builtins}


if __name__ == "__main__":
    exec(*main(sys.argv))
