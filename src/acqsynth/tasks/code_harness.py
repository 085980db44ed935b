"""The program the code grader runs in the sandbox: the candidate and the tests in two processes.

Why two: code that runs in the tests' interpreter can forge their verdict. It can make `exec` or
`compile` no-ops so the tests never run, walk the stack to read a success marker, redefine what the
tests call, or return an object whose `==` is always true. So the tests never share an interpreter
with the candidate:

- the *test process* (this program's process) forks the *candidate process* first, then reads the
  success token from stdin (the host writes it there; the candidate process closed its stdin before
  any candidate code ran and cannot open the test process's file descriptors or memory, which is
  not dumpable);
- the candidate process runs the candidate code and then serves calls over a socket;
- the test process runs the tests in its own namespace, where each name the candidate defined is a
  proxy: a call sends its arguments and gets back plain data (None, bool, int, float, complex, str,
  bytes, and tuples, lists, dicts, sets and frozensets of them; a Counter arrives as a dict, a
  namedtuple as a tuple), checked on arrival, or a *reference* to an object that stays in the
  candidate process (a class instance, a generator), whose attributes, calls and iteration go there
  while its equality, hash and truth are those of the local stand-in (identity). So the tests
  compare only values built in the test process. A name that shadows a built-in is not imported
  (a candidate's own `abs` must not decide `abs(x - y) < 1e-6`) unless it is the entry point, and an
  exception the candidate raises is re-raised as the built-in exception of that name (so tests may
  catch it), or as `CandidateError` carrying its name;
- names the problem itself defines besides the entry point (HumanEval's `poly`, `encode_cyclic`, which
  the tests call) are executed from the problem's text in the test process, so a candidate cannot
  swap them for its own;
- only after the tests ran to the end does the test process stop the candidate process and print
  the token, so the host's verdict rests on something only this process knows.

What this costs: each call crosses a socket (tens of microseconds); the tests can pass the candidate
only plain data and references, not their own functions or objects; arguments the candidate mutates
are not mutated in the tests' copy; an object of the candidate compares equal only to itself. This
file is sent to the sandbox as source text (like `sandbox/child.py`) and imports only the standard
library; `tasks/code.py` appends the call to `main`.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import importlib
import json
import marshal
import numbers
import os
import signal
import socket
import struct
import sys
import traceback
import types
from typing import Any

ERROR_MARK = "ACQSYNTH-ERROR "
"""Starts the stderr line that carries a failure's exception type and message as JSON."""
PLAIN_TYPES = (type(None), bool, int, float, complex, str, bytes, tuple, list, dict, set, frozenset)
MAX_MESSAGE = 256 * 1024 * 1024
"""Largest message accepted from the candidate process (bytes)."""
MAX_ITEMS = 10_000_000
"""Largest number of values in one message (a guard on the plain-data check)."""
PR_SET_DUMPABLE = 4
_HEADER = struct.Struct("<Q")


class CandidateExited(ConnectionError):
    """The candidate's process ended (os._exit, a signal, a crash) before the tests finished."""


EXITED = "exit"
"""The failure type `CandidateExited` is reported as."""


class CandidateError(Exception):
    """An exception the candidate raised, re-raised in the tests' process under the candidate's type name."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name


def is_plain(value: Any) -> bool:
    """True when `value` is plain data: built-in scalars and containers of them, nothing else."""
    stack, seen = [value], 0
    while stack:
        x = stack.pop()
        seen += 1
        if seen > MAX_ITEMS or type(x) not in PLAIN_TYPES:
            return False
        if type(x) is dict:
            stack.extend(x.keys())
            stack.extend(x.values())
        elif type(x) in (tuple, list, set, frozenset):
            stack.extend(x)
    return True


def send(sock: socket.socket, message: Any) -> None:
    data = marshal.dumps(message)
    sock.sendall(_HEADER.pack(len(data)) + data)


def _read(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise CandidateExited("the candidate's process ended")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> Any:
    (n,) = _HEADER.unpack(_read(sock, _HEADER.size))
    if n > MAX_MESSAGE:
        raise ConnectionError(f"the candidate's process sent {n} bytes in one message")
    return marshal.loads(_read(sock, n))


def _message(e: BaseException) -> str:
    try:
        return str(e)
    except BaseException:  # noqa: BLE001 -- a hostile __str__
        return ""


def plainify(value: Any) -> Any:
    """`value` as plain data, subclasses of the built-in types turned into the types themselves (a
    Counter into a dict, a namedtuple into a tuple); raises TypeError for anything else."""
    t = type(value)
    if t in (type(None), bool, int, float, complex, str, bytes):
        return value
    base: Any
    for base in (bool, int, float, complex, str, bytes):
        if isinstance(value, base):
            return base(value)
    if isinstance(value, numbers.Integral):  # numpy's integers and alike
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        return {plainify(k): plainify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plainify(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plainify(v) for v in value)
    if isinstance(value, frozenset):
        return frozenset(plainify(v) for v in value)
    if isinstance(value, set):
        return {plainify(v) for v in value}
    raise TypeError(t.__name__)


class Server:
    """The candidate process's side: runs requests on the candidate's objects, answers with plain data or
    a reference (a handle) to an object that stays here."""

    def __init__(self, sock: socket.socket, ns: dict[str, Any]) -> None:
        self.sock, self.ns = sock, ns
        self.objects: dict[int, Any] = {}
        self.handles: dict[int, int] = {}  # id(object) -> handle

    def encode(self, value: Any) -> tuple[Any, ...]:
        try:
            return ("return", plainify(value))
        except (TypeError, RecursionError):
            handle = self.handles.setdefault(id(value), len(self.objects) + 1)
            self.objects[handle] = value
            return ("ref", handle, type(value).__name__)

    def decode(self, arg: tuple[str, Any]) -> Any:
        return self.objects[arg[1]] if arg[0] == "r" else arg[1]

    def handle(self, request: tuple[Any, ...]) -> Any:
        op = request[0]
        if op == "call":
            target = self.ns[request[1][1]] if request[1][0] == "name" else self.objects[request[1][1]]
            args = [self.decode(a) for a in request[2]]
            kwargs = {k: self.decode(v) for k, v in request[3].items()}
            return target(*args, **kwargs)
        if op == "getattr":
            return getattr(self.objects[request[1]], request[2])
        if op == "setattr":
            return setattr(self.objects[request[1]], request[2], self.decode(request[3]))
        if op == "iter":
            return iter(self.objects[request[1]])
        if op == "next":
            return next(self.objects[request[1]])
        raise ValueError(f"unknown request {op!r}")

    def serve(self) -> None:
        while True:
            request = receive(self.sock)
            try:
                reply = self.encode(self.handle(request))
            except StopIteration as e:
                reply = ("stop",) if request[0] == "next" else ("raise", "StopIteration", _message(e))
            except BaseException as e:  # noqa: BLE001
                reply = ("raise", builtin_type_name(e), _message(e))
            send(self.sock, reply)


def builtin_type_name(e: BaseException) -> str:
    """The name of the first built-in exception class `e` is an instance of (a candidate's
    `class Bad(ValueError)` crosses as ValueError, so the tests' `except ValueError` still catches it)."""
    for cls in type(e).__mro__:
        if getattr(builtins, cls.__name__, None) is cls:
            return cls.__name__
    return type(e).__name__


def candidate_process(sock: socket.socket, candidate: str) -> None:
    """Run the candidate, describe its names, then serve requests until the test process stops it."""
    ns: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        exec(compile(candidate, "<candidate>", "exec"), ns)
    except BaseException as e:  # noqa: BLE001 -- whatever the candidate raised is its failure
        send(sock, ("error", type(e).__name__, _message(e), traceback.format_exc()))
        return
    catalogue: dict[str, tuple[str, Any]] = {}
    for name, value in list(ns.items()):
        if not isinstance(name, str) or name.startswith("__"):
            continue
        if isinstance(value, types.ModuleType):
            catalogue[name] = ("module", value.__name__)
        elif callable(value):
            catalogue[name] = ("call", None)
        else:
            try:
                catalogue[name] = ("data", plainify(value))
            except (TypeError, RecursionError):
                continue
    send(sock, ("ready", catalogue))
    Server(sock, ns).serve()


def _exception(name: Any, message: Any) -> BaseException:
    """The built-in exception called `name` (an Exception, so tests may catch it), else CandidateError."""
    kind = getattr(builtins, name, None) if isinstance(name, str) else None
    text = message if isinstance(message, str) else ""
    if isinstance(kind, type) and issubclass(kind, Exception) and not issubclass(kind, (StopIteration, StopAsyncIteration)):
        try:
            return kind(text)
        except Exception:  # noqa: BLE001 -- e.g. UnicodeDecodeError needs five arguments
            pass
    return CandidateError(str(name)[:100], text)


class Link:
    """The test process's side of the socket: sends requests, checks every reply, keeps one `Remote`
    per handle (so `is` between references works)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.remotes: dict[int, Remote] = {}

    def arg(self, value: Any) -> tuple[str, Any]:
        if isinstance(value, Remote):
            return ("r", object.__getattribute__(value, "_handle"))
        if not is_plain(value):
            raise TypeError("the grader passes the candidate only plain data (numbers, strings, bytes and "
                            "containers of them) or objects the candidate made")
        return ("v", value)

    def ask(self, request: tuple[Any, ...]) -> Any:
        send(self.sock, request)
        reply = receive(self.sock)
        if type(reply) is not tuple or not reply:
            raise ConnectionError("the candidate's process sent a malformed reply")
        if reply[0] == "return" and len(reply) == 2 and is_plain(reply[1]):
            return reply[1]
        if reply[0] == "ref" and len(reply) == 3 and type(reply[1]) is int:
            if reply[1] not in self.remotes:
                self.remotes[reply[1]] = Remote(self, reply[1], str(reply[2])[:80])
            return self.remotes[reply[1]]
        if reply[0] == "raise" and len(reply) == 3:
            raise _exception(reply[1], reply[2])
        if reply[0] == "stop" and len(reply) == 1 and request[0] == "next":
            raise StopIteration
        raise ConnectionError("the candidate's process sent a malformed reply")

    def call(self, target: tuple[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.ask(("call", target, [self.arg(a) for a in args], {k: self.arg(v) for k, v in kwargs.items()}))


class Proxy:
    """Stands in the tests' namespace for one callable the candidate defined."""

    def __init__(self, link: Link, name: str) -> None:
        self._link, self.__name__ = link, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._link.call(("name", self.__name__), args, kwargs)


class Remote:
    """An object that lives in the candidate's process (a class instance, a generator): its attributes,
    calls and iteration go there, while equality, hashing and truth stay those of this local stand-in
    (identity), so no object of the candidate's decides a comparison in the tests."""

    __slots__ = ("_link", "_handle", "_type")

    def __init__(self, link: Link, handle: int, type_name: str) -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_type", type_name)

    def __getattr__(self, name: str) -> Any:
        return object.__getattribute__(self, "_link").ask(("getattr", object.__getattribute__(self, "_handle"), name))

    def __setattr__(self, name: str, value: Any) -> None:
        link = object.__getattribute__(self, "_link")
        link.ask(("setattr", object.__getattribute__(self, "_handle"), name, link.arg(value)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return object.__getattribute__(self, "_link").call(("ref", object.__getattribute__(self, "_handle")), args, kwargs)

    def __iter__(self) -> Any:
        return object.__getattribute__(self, "_link").ask(("iter", object.__getattribute__(self, "_handle")))

    def __next__(self) -> Any:
        return object.__getattribute__(self, "_link").ask(("next", object.__getattribute__(self, "_handle")))

    def __repr__(self) -> str:
        return f"<the candidate's {object.__getattribute__(self, '_type')}>"


def _namespace(link: Link, catalogue: Any, entry_point: str) -> dict[str, Any]:
    """The tests' globals: proxies, module imports and plain values for the candidate's names (not those
    that shadow a built-in, except the entry point the tests are about)."""
    if type(catalogue) is not dict:
        raise ConnectionError("the candidate's process sent a malformed catalogue")
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    shadowed = set(vars(builtins)) - {entry_point}
    for name, entry in catalogue.items():
        if type(name) is not str or not name.isidentifier() or name in shadowed or type(entry) is not tuple:
            continue
        kind, value = entry if len(entry) == 2 else (None, None)
        if kind == "call":
            ns[name] = Proxy(link, name)
        elif kind == "module" and type(value) is str and name in (value.split(".")[0], value.split(".")[-1]):
            try:
                ns[name] = importlib.import_module(value)
            except Exception:  # noqa: BLE001 -- a module the tests' interpreter does not have
                continue
        elif kind == "data" and is_plain(value):
            ns[name] = value
    return ns


def _fail(e: BaseException) -> None:
    traceback.print_exc()
    name = EXITED if isinstance(e, CandidateExited) else e.type_name if isinstance(e, CandidateError) else type(e).__name__
    detail = {"type": name, "msg": _message(e)}
    sys.stderr.write("\n" + ERROR_MARK + json.dumps(detail) + "\n")
    sys.stderr.flush()


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass


def main(candidate: str, tests: str, entry_point: str = "", trusted: str = "") -> None:
    """Fork the candidate process, read the token, run the tests against it, print the token if they pass."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    ours, theirs = socket.socketpair()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(0)  # the token arrives there: never readable by the candidate
        with contextlib.suppress(OSError):
            os.open(os.devnull, os.O_RDONLY)  # fd 0 again, empty: `input()` sees EOF as before
        ours.close()
        try:
            candidate_process(theirs, candidate)
        finally:
            os._exit(0)
    theirs.close()
    token = sys.stdin.readline().strip()
    try:
        first = receive(ours)
        if type(first) is tuple and first and first[0] == "error" and len(first) == 4:
            sys.stderr.write(str(first[3]))
            raise CandidateError(str(first[1])[:100], first[2] if isinstance(first[2], str) else "")
        if type(first) is not tuple or len(first) != 2 or first[0] != "ready":
            raise ConnectionError("the candidate's process sent a malformed first message")
        ns = _namespace(Link(ours), first[1], entry_point)
        if trusted:  # the problem's own helpers (HumanEval's `poly`, `encode_cyclic`): not the candidate's copies
            exec(compile(trusted, "<problem>", "exec"), ns)
        exec(compile(tests, "<tests>", "exec"), ns)
    except BaseException as e:  # noqa: BLE001 -- every way the tests can end early is a failure
        _stop(pid)
        _fail(e)
        os._exit(1)
    _stop(pid)
    sys.stdout.flush()
    os.write(1, ("\n" + token + "\n").encode())
    os._exit(0)
