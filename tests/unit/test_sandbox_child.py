"""The sandbox's child program (sandbox/child.py): its pure parts in-process, its command line and status
pipe against the runner, and the properties the code sees, end to end."""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from acqsynth.sandbox import child
from acqsynth.sandbox import runner as sandbox
from acqsynth.sandbox.runner import run_python

SOURCE = Path(child.__file__).read_text(encoding="utf-8")

# ------------------------------------------------------------------------------------------------
# The module as a program


def test_child_imports_only_the_standard_library() -> None:
    """It runs under `python -I` without this package on its path: anything else would fail there."""
    names = set()
    for node in ast.walk(ast.parse(SOURCE)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module is not None
            names.add(node.module.split(".")[0])
    assert names, "no imports found"
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names - set(sys.stdlib_module_names)


def test_importing_the_child_runs_nothing_but_definitions() -> None:
    """Top level: imports, constants, definitions, the TYPE_CHECKING block and the `__main__` guard."""
    tree = ast.parse(SOURCE)
    guards = []
    for node in tree.body:
        if isinstance(node, ast.If):
            guards.append(ast.unparse(node.test))
            continue
        allowed = (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.FunctionDef, ast.ClassDef)
        is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        assert isinstance(node, allowed) or is_docstring, ast.unparse(node)
    assert guards == ["TYPE_CHECKING", "__name__ == '__main__'"]


def test_runner_passes_the_child_source_verbatim_and_it_fits_one_argument() -> None:
    assert sandbox._child_source() == SOURCE
    assert len(SOURCE.encode()) < 128 * 1024 - 1  # Linux's MAX_ARG_STRLEN, with the terminating NUL
    assert sandbox.SANDBOX_UIDS == child.SANDBOX_UIDS and 65534 not in child.SANDBOX_UIDS  # not nobody's
    assert child.SIGKILL == signal.SIGKILL


@pytest.mark.parametrize(
    ("fd", "workdir", "drop", "home", "disk_mb", "fs", "block", "uid"),
    [
        (7, "/tmp/acqsynth-sandbox-x", "uid", "/root", 64, "readonly", False, 65003),
        (12, "/tmp/a b/c", "caps", "", 1, "landlock", True, 1000),
        (3, "/w", "caps", "/home/u", 128, "none", False, 0),
    ],
)
def test_arguments_and_parse_args_round_trip(
    fd: int, workdir: str, drop: str, home: str, disk_mb: int, fs: str, block: bool, uid: int
) -> None:
    argv = child.arguments(fd, workdir, drop, home, disk_mb, fs, block, uid, (11, 512, 16, 80))
    assert all(isinstance(a, str) for a in argv)
    opts = child.parse_args(["-c", *argv])
    assert vars(opts) == {
        "status_fd": fd, "workdir": workdir, "drop": drop, "home": home, "disk_mb": disk_mb,
        "filesystem": fs, "block_sockets": block, "uid": uid, "limits": (11, 512, 16, 80),
    }


def test_parse_args_refuses_a_command_line_of_another_shape() -> None:
    argv = ["-c", *child.arguments(3, "/w", "caps", "", 64, "none", False)]
    with pytest.raises(ValueError):
        child.parse_args(argv[:-1])
    with pytest.raises(ValueError):
        child.parse_args([*argv, "extra"])
    with pytest.raises(ValueError):
        child.parse_args(["-c", "three", *argv[2:]])


def test_every_filesystem_mode_has_a_setup_and_unknown_modes_only_drop_privileges() -> None:
    assert set(child.FILESYSTEM) == {"readonly", "landlock", "none"}
    assert child.FILESYSTEM["none"] is child.unrestricted
    assert child.FILESYSTEM.get("bogus", child.unrestricted) is child.unrestricted


# ------------------------------------------------------------------------------------------------
# Network fallback: the socket hook (called directly; installing it here would be for good)


def test_socket_hook_refuses_network_sockets_and_lookups() -> None:
    hook = child.socket_hook()
    inet = SimpleNamespace(family=socket.AF_INET)
    unix = SimpleNamespace(family=socket.AF_UNIX)
    refused = [
        ("socket.__new__", (None, socket.AF_INET, socket.SOCK_STREAM, 0)),
        ("socket.__new__", (None, socket.AF_INET6, socket.SOCK_DGRAM, 0)),
        ("socket.connect", (inet, ("127.0.0.1", 80))),
        ("socket.bind", (inet, ("0.0.0.0", 0))),
        ("socket.sendto", (inet, ("8.8.8.8", 53))),
        ("socket.sendmsg", (object(), ("8.8.8.8", 53))),  # no family: refused
        ("socket.getaddrinfo", ("example.com", 80, 0, 0, 0, 0)),
        ("socket.gethostbyname", ("example.com",)),
        ("socket.gethostbyname_ex", ("example.com",)),
        ("socket.gethostbyaddr", ("1.1.1.1",)),
        ("socket.getnameinfo", (("1.1.1.1", 80), 0)),
    ]
    for event, args in refused:
        with pytest.raises(PermissionError, match="network access is disabled"):
            hook(event, args)
    allowed = [
        ("socket.__new__", (None, socket.AF_UNIX, socket.SOCK_STREAM, 0)),
        ("socket.connect", (unix, "/tmp/x.sock")),
        ("socket.bind", (unix, "\0abstract")),
        ("socket.sendto", (unix, "/tmp/x.sock")),
        ("socket.gethostname", ()),
        ("open", ("/etc/passwd", "r", 0)),
        ("os.system", (b"true",)),
    ]
    for event, args in allowed:
        assert hook(event, args) is None


# ------------------------------------------------------------------------------------------------
# Filesystem helpers (the mount jail and Landlock themselves change the process: tested end to end)


def test_under_compares_whole_path_components() -> None:
    assert child.under("/usr", "/usr") and child.under("/usr/lib", "/usr") and child.under("/usr/lib", "/usr/")
    assert not child.under("/usr2", "/usr") and not child.under("/us", "/usr")
    assert child.under("/anything", "/")


def test_outermost_keeps_only_the_top_of_each_nested_group() -> None:
    assert child.outermost(sorted(["/a/b", "/a", "/ab", "/a", "/c/d/e", "/c/d"])) == ["/a", "/ab", "/c/d"]
    assert child.outermost([]) == []


def test_hidden_dirs_cover_homes_and_the_temp_parent_never_the_root(tmp_path: Path) -> None:
    workdir = tmp_path / "acqsynth-sandbox-x"
    home = tmp_path / "home"
    hidden = child.hidden_dirs(str(workdir), str(home))
    assert hidden == {os.path.realpath(p) for p in ("/root", "/home", str(home), str(tmp_path))}
    assert child.hidden_dirs("/w", "") == {os.path.realpath("/root"), os.path.realpath("/home")}


def test_python_dirs_hold_the_interpreter_and_its_library() -> None:
    dirs = child.python_dirs()
    assert sys.prefix in dirs and sys.base_prefix in dirs
    assert os.path.dirname(os.path.realpath(sys.executable)) in dirs
    assert os.path.dirname(os.__file__) in dirs


def test_mount_point_decodes_octal_escapes() -> None:
    line = r"36 35 98:0 /mnt1 /mnt\040with\040space\134x rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
    assert child.mount_point(line + "\n") == "/mnt with space\\x"
    assert child.mount_point("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw") == "/"


def test_mount_points_lists_this_namespace() -> None:
    points = child.mount_points()
    assert "/" in points and "/proc" in points


def test_mount_constants_match_the_platform() -> None:
    for name in ("RDONLY", "NOSUID", "NODEV", "NOEXEC", "NOATIME", "NODIRATIME", "RELATIME"):
        assert getattr(child, "ST_" + name) == getattr(os, "ST_" + name)
    # The remount keeps these flags of a mount (the former inline boot script's table, as reference).
    assert child.KEEP_FLAGS == ((2, 2), (4, 4), (8, 8), (1024, 1024), (2048, 2048), (4096, 1 << 21))
    assert (child.MS_REMOUNT, child.MS_BIND, child.MS_REC, child.MS_PRIVATE) == (32, 4096, 16384, 1 << 18)


@pytest.mark.parametrize("abi", range(1, 9))
def test_landlock_rights_match_the_abi(abi: int) -> None:
    fs, file_rights, attr = child.landlock_rights(abi)
    # The formulas of the former inline boot script, kept as the reference.
    want_fs = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
    want_attr = struct.pack("QQQ", want_fs, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)[
        : 24 if abi >= 6 else 16 if abi >= 4 else 8
    ]
    assert (fs, file_rights, attr) == (want_fs, want_fs & (1 | 2 | 4 | 1 << 14 | 1 << 15), want_attr)
    assert file_rights & child.FS_READ_DIR == 0  # a directory-only right never goes on a file rule


def test_landlock_rights_grow_with_the_abi() -> None:
    fs1, _, attr1 = child.landlock_rights(1)
    assert fs1 == 0x1FFF and len(attr1) == 8
    _, _, attr4 = child.landlock_rights(4)
    assert struct.unpack("QQ", attr4)[1] == child.NET_BIND_TCP | child.NET_CONNECT_TCP
    fs6, _, attr6 = child.landlock_rights(6)
    assert struct.unpack("QQQ", attr6)[2] == child.SCOPE_SIGNAL | child.SCOPE_ABSTRACT_UNIX_SOCKET
    assert fs6 & child.FS_REFER and fs6 & child.FS_TRUNCATE and fs6 & child.FS_IOCTL_DEV


# ------------------------------------------------------------------------------------------------
# The monitor: process table, status line, exit code


def test_parent_pid_reads_proc_stat_even_with_parentheses_in_the_name() -> None:
    assert child.parent_pid(Path("/proc/self/stat").read_bytes()) == os.getppid()
    assert child.parent_pid(b"123 (evil) 1 (x)) S 42 123 123 0 -1") == 42


def test_children_of_finds_a_child_of_this_process() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert proc.pid in child.children_of(os.getpid())
        assert child.children_of(proc.pid) == []
    finally:
        proc.kill()
        proc.wait()


def test_kill_leftovers_kills_and_reaps_orphans_of_a_subreaper() -> None:
    """Run in a separate process: it kills every child of the process that calls it."""
    script = textwrap.dedent(
        """
        import ctypes, json, os, subprocess, time
        from acqsynth.sandbox import child
        ctypes.CDLL(None).prctl(child.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        subprocess.run(["sh", "-c", "sleep 60 & sleep 60 &"], check=True)  # sh exits: two orphans come back here
        me = os.getpid()
        deadline = time.monotonic() + 10
        while len(child.children_of(me)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = child.children_of(me)
        child.kill_leftovers(me)
        print(json.dumps({"before": before, "after": child.children_of(me),
                          "alive": [p for p in before if os.path.exists(f"/proc/{p}")]}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert len(out["before"]) == 2 and out["after"] == [] and out["alive"] == []


@pytest.mark.parametrize(
    ("status", "code"),
    [(0, 0), (3 << 8, 3), (255 << 8, 255), (signal.SIGKILL, 128 + 9), (signal.SIGSEGV, 128 + 11)],
)
def test_status_line_round_trips_through_the_runner(status: int, code: int) -> None:
    """What the monitor writes is what the host accepts, and the monitor exits as the host expects."""
    assert child.exit_code(status) == code
    r, w = os.pipe()
    try:
        assert child.report(w, status, 1.25)
        assert sandbox._read_status(r, code) == (status, 1.25)
    finally:
        os.close(r)
        os.close(w)
    assert child.status_line(status, 0.1234567) == f"{status} 0.123457\n".encode()


def test_a_report_that_disagrees_with_the_monitors_exit_is_ignored() -> None:
    r, w = os.pipe()
    try:
        child.report(w, 0, 0.5)
        assert sandbox._read_status(r, 1) is None
    finally:
        os.close(r)
        os.close(w)


def test_report_says_when_nobody_listens() -> None:
    r, w = os.pipe()
    os.close(r)
    try:
        assert child.report(w, 0, 0.0) is False
    finally:
        os.close(w)


# ------------------------------------------------------------------------------------------------
# The program, without the runner and through it


def test_child_program_runs_main_py_and_reports_on_the_status_pipe(tmp_path: Path) -> None:
    """child.py's command line as the runner builds it, in mode `none` with the socket hook."""
    (tmp_path / "main.py").write_text(
        "import socket, sys\n"
        "try:\n    socket.socket()\nexcept PermissionError as e:\n    print('refused:', e)\n"
        "print(sys.argv, __name__, __file__)\n"
        "raise SystemExit(3)\n"
    )
    r, w = os.pipe()
    try:
        argv = child.arguments(w, str(tmp_path), "caps", "", 64, "none", True)
        done = subprocess.run(
            [sys.executable, "-I", "-B", "-X", "utf8", "-c", SOURCE, *argv],
            cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, pass_fds=(w,), capture_output=True, text=True,
            timeout=60,
        )
        os.close(w)
        w = -1
        assert done.returncode == 3, done.stderr
        assert done.stdout.splitlines() == [
            "refused: network access is disabled in the acqsynth sandbox",
            "['main.py'] __main__ main.py",
        ]
        report = sandbox._read_status(r, done.returncode)
        assert report is not None and report[0] == 3 << 8
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_the_code_sees_a_plain_main_module() -> None:
    """One frame above the code's, `__main__`, argv `['main.py']`, and no future import of the child's:
    annotations are evaluated as in `python main.py`."""
    code = textwrap.dedent(
        """
        import json, sys
        f, depth = sys._getframe(), 0
        while f:
            depth, f = depth + 1, f.f_back
        def g(x: int) -> None: ...
        print(json.dumps({"depth": depth, "argv": sys.argv, "name": __name__, "file": __file__,
                          "annotation": repr(g.__annotations__["x"]), "isolated": sys.flags.isolated}))
        """
    )
    r = run_python(code, timeout_s=20)
    assert r.ok, r.stderr
    assert json.loads(r.stdout) == {
        "depth": 2, "argv": ["main.py"], "name": "__main__", "file": "main.py",
        "annotation": "<class 'int'>", "isolated": 1,
    }


def test_tracebacks_name_no_host_path() -> None:
    r = run_python("1/0", timeout_s=20)
    assert r.status == "error"
    assert 'File "<string>"' in r.stderr and 'File "main.py", line 1' in r.stderr
    assert "child.py" not in r.stderr and str(Path(child.__file__).parent) not in r.stderr
