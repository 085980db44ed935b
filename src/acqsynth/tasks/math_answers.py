"""Finding, normalising and comparing final answers of math problems.

Three steps, each cheap before the next:
1. `extract_math_answer`: the final answer in free text (`#### x`, else the last `\\boxed{x}`, else
   "The answer is x", else the last number).
2. `normalize_math_answer`: strip what does not change the value (`$`, thousands commas, units,
   `%`, `\\text{}`, a trailing period, `\\left`/`\\right`, ...).
3. `math_equal`: exact rational comparison when both sides are plain numbers (the common case, no
   sympy), else a symbolic comparison by math_verify in a separate worker process that is killed
   if it takes too long, so a pathological expression (`10^{10^{10}}`) can never hang the caller,
   from any thread (math_verify's own timeout uses SIGALRM: main thread only, and it cancels any
   alarm the caller had set).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import re
import resource
import selectors
import subprocess
import sys
import threading
import time
from decimal import Decimal, InvalidOperation
from fractions import Fraction

# ------------------------------------------------------------------------------------------------
# Extraction

_BOXED = re.compile(r"\\(?:boxed|fbox)\b")
_HASH_HEADER = re.compile(r"^(?:step|solution|explanation|reasoning|problem|part)\b", re.IGNORECASE)
_ANSWER_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:=]?\s*", re.IGNORECASE)
_ANSWER_IS = re.compile(
    r"(?:final\s+answer|the\s+answer|answer)\s*(?:is|:|=)\s*:?[ \t]*([^\n]+)", re.IGNORECASE
)
_NUMBER = re.compile(
    r"(?<![\w.])-?\\[dt]?frac\{-?\d+\}\{\d+\}"
    r"|(?<![\w.])-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[ \t]*/[ \t]*\d+(?![\d.]))?"
)


def _brace_pairs(text: str) -> dict[int, int]:
    """Index of each `{` -> index of its matching `}`, in one linear pass (escaped `\\{` is literal)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`, `\\boxed 5`) with nested braces handled."""
    pairs: dict[int, int] | None = None
    for m in reversed(list(_BOXED.finditer(text))):
        i = m.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "{":
            if pairs is None:
                pairs = _brace_pairs(text)
            close = pairs.get(i)
            if close is not None and text[i + 1 : close].strip():
                return text[i + 1 : close].strip()
        elif i > m.end():
            tok = re.match(r"[^\s$]+", text[i:])
            if tok:
                return tok.group(0)
    return None


def _after_hashes(text: str) -> str | None:
    """The answer after the last `####` that has one (its first non-empty line).

    Markdown headers (`#### Step 1`) and empty markers (a model that went on to write a new
    problem ending in a bare `####`) are skipped in favour of an earlier marker.
    """
    if "####" not in text:
        return None
    for segment in reversed(re.split(r"#{4,}", text)[1:]):
        line = next((ln.strip() for ln in segment.splitlines() if ln.strip()), "")
        if not line or _HASH_HEADER.match(line):
            continue
        line = _ANSWER_PREFIX.sub("", line).strip()
        if line:
            return line
    return None


def _answer_is(text: str) -> str | None:
    """The answer in the last "The answer is X" / "Answer: X", cut at the end of its sentence."""
    found = None
    for m in _ANSWER_IS.finditer(text):
        found = m.group(1)
    if found is None:
        return None
    cand = re.split(r"\.\s", found, maxsplit=1)[0].strip()
    if not cand:
        return None
    # "The answer is that she has 18 apples": prose around a number; keep the number.
    prose = re.sub(r"\\[a-zA-Z]+", "", cand)
    if re.search(r"[A-Za-z]{3,}", prose) and not _looks_like_number_with_unit(cand):
        nums = _NUMBER.findall(cand)
        if nums:
            return nums[-1]
    return cand


def last_number(text: str) -> str | None:
    """The last number in the text (integers, decimals, thousands commas, a/b and \\frac{a}{b})."""
    found = None
    for m in _NUMBER.finditer(text):
        found = m.group(0)
    return found


def extract_math_answer(text: str) -> str | None:
    """The final answer in a completion, normalised; None when there is none.

    Order: `#### x`, then the last `\\boxed{x}`, then "The answer is x", then the last number.
    """
    for finder in (_after_hashes, last_boxed, _answer_is, last_number):
        cand = finder(text)
        if cand is not None:
            norm = normalize_math_answer(cand)
            if norm:
                return norm
    return None


def gold_math_answer(answer: str) -> str:
    """The reference answer in comparable form (a GSM8K-style "… #### 18" or a boxed answer is unwrapped)."""
    if "####" in answer:
        cand = _after_hashes(answer)
        if cand:
            return normalize_math_answer(cand)
    if _BOXED.search(answer):
        cand = last_boxed(answer)
        if cand:
            return normalize_math_answer(cand)
    return normalize_math_answer(answer)


# ------------------------------------------------------------------------------------------------
# Normalisation

_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_SPACING = re.compile(r"\\[!,;: ]|\\(?:left|right)\b|\\displaystyle\b|~")
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_NUM_WITH_UNIT = re.compile(
    r"([+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+)\s+([A-Za-z][A-Za-z .'/-]+)"
)
_VAR_EQ = re.compile(r"[A-Za-z]\s*=\s*(.+)")


def _looks_like_number_with_unit(s: str) -> bool:
    s = s.strip().lstrip("$").strip().rstrip(".")
    m = _NUM_WITH_UNIT.fullmatch(s)
    return bool(m and len(m.group(2).strip()) >= 2)


def normalize_math_answer(s: str) -> str:
    """A canonical string for an answer: same value, fewer surface differences.

    "$1,234.00" -> "1234.00", "18 dollars." -> "18", "50\\%" -> "50", "\\dfrac{1}{2}" -> "\\frac{1}{2}",
    "x = 5" -> "5", "\\text{(B)}" -> "(B)". Percent signs are dropped: "50%" equals "50", not "0.5".
    """
    s = s.strip()
    if len(s) > 2000:  # not an answer; keep it cheap
        return s[:2000]
    s = s.replace("\u2212", "-").replace("\u00a0", " ")
    s = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", s).strip()
    s = s.replace("\\$", "").replace("$", "")
    if s.startswith(("\\boxed", "\\fbox")):
        inner = last_boxed(s)
        if inner is not None:
            s = inner
    s = _TEXT_CMD.sub(lambda m: m.group(1), s)
    s = _SPACING.sub("", s)
    s = _DEGREE.sub("", s)
    s = s.replace("\\%", "").replace("%", "")
    s = re.sub(r"\\[dt]frac\b", r"\\frac", s)
    s = s.replace("{,}", ",")
    s = re.sub(r"\s+", " ", s).strip()
    s = s.strip("*").strip()
    s = s.rstrip(".,;:").strip()
    m = _VAR_EQ.fullmatch(s)
    if m and _as_number(_strip_unit(m.group(1).strip())) is not None:
        s = m.group(1).strip()
    s = _strip_unit(s)
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    return s


def _strip_unit(s: str) -> str:
    """Drop a unit word: "18 dollars" -> "18"; "5 m" (one letter: maybe a variable) and "2x" are left alone."""
    m = _NUM_WITH_UNIT.fullmatch(s)
    if m and len(m.group(2).strip()) >= 2:
        return m.group(1)
    return s


# ------------------------------------------------------------------------------------------------
# Comparison

_INT = re.compile(r"[+-]?\d+")
_DEC = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_SLASH = re.compile(r"([+-]?\d+)\s*/\s*(\d+)")
_FRAC = re.compile(r"([+-])?\\frac(?:\{([+-]?\d+)\}\{(\d+)\}|(\d)(\d))")
_MAX_DIGITS = 1000


def _as_number(s: str) -> Fraction | None:
    """The exact value of a plain number: int, decimal, a/b or \\frac{a}{b}; None for anything else."""
    if len(s) > _MAX_DIGITS:
        return None
    try:
        if _INT.fullmatch(s):
            return Fraction(int(s))
        if _DEC.fullmatch(s):
            return Fraction(Decimal(s))
        m = _SLASH.fullmatch(s)
        if m:
            den = int(m.group(2))
            return Fraction(int(m.group(1)), den) if den else None
        m = _FRAC.fullmatch(s)
        if m:
            top, bottom = (m.group(2), m.group(3)) if m.group(2) is not None else (m.group(4), m.group(5))
            if int(bottom) == 0:
                return None
            value = Fraction(int(top), int(bottom))
            return -value if m.group(1) == "-" else value
    except (ValueError, ZeroDivisionError, InvalidOperation):
        return None
    return None


def _terminates(x: Fraction) -> bool:
    d = x.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def _decimals(s: str) -> int:
    return len(s.split(".", 1)[1]) if _DEC.fullmatch(s) else 0


def _numbers_equal(p: Fraction, ps: str, g: Fraction, gs: str) -> bool:
    """Exact equality; a written decimal also equals a non-terminating fraction it agrees with to all
    its digits (at least 2): 0.33 == 1/3, 0.3333 == \\frac{1}{3}, but 0.3 != 1/3 and 0.74 != 3/4."""
    if p == g:
        return True
    for dec, dec_s, frac in ((p, ps, g), (g, gs, p)):
        k = _decimals(dec_s)
        if k >= 2 and not _terminates(frac) and abs(dec - frac) < Fraction(1, 10**k):
            return True
    return False


_HUGE = re.compile(r"\^\s*\{?\s*[\d.]{4,}|\^\s*\{[^{}]*\^|\d{3,}\s*!|\\binom\{\d{4,}")


def math_equal(pred: str, gold: str, timeout_s: float = 5.0) -> bool:
    """Whether two answers denote the same value. Inputs may be raw or already normalised.

    Plain numbers are compared exactly in-process; anything else goes to math_verify in a worker
    process with a hard time limit (`timeout_s`); a timeout counts as not equal.
    """
    p, g = normalize_math_answer(pred), normalize_math_answer(gold)
    if not p or not g:
        return False
    if p == g:
        return True
    pn, gn = _as_number(p), _as_number(g)
    if pn is not None and gn is not None:
        return _numbers_equal(pn, p, gn, g)
    if re.fullmatch(r"[A-Za-z][A-Za-z ]+", p) and re.fullmatch(r"[A-Za-z][A-Za-z ]+", g):
        return p.lower() == g.lower()  # word answers ("Monday"); sympy would read them as products
    if len(p) > 300 or len(g) > 300 or _HUGE.search(p) or _HUGE.search(g):
        return False
    return _symbolic_equal(p, g, timeout_s)


@functools.lru_cache(maxsize=8192)
def _symbolic_equal(pred: str, gold: str, timeout_s: float) -> bool:
    return _WORKER.compare(pred, gold, timeout_s)


_WORKER_SRC = r"""
import json, logging, sys
logging.disable(logging.CRITICAL)
out = sys.stdout
sys.stdout = sys.stderr  # anything the libraries print must not be read as a reply
from math_verify import parse, verify
T = int(sys.argv[1])
out.write("ready\n"); out.flush()
for line in sys.stdin:
    rid = None
    try:
        req = json.loads(line)
        rid = req["id"]
        g = parse("$" + req["g"] + "$", parsing_timeout=T)
        p = parse("$" + req["p"] + "$", parsing_timeout=T)
        eq = bool(g) and bool(p) and bool(verify(g, p, timeout_seconds=T))
    except BaseException:
        eq = False
    out.write(json.dumps({"id": rid, "eq": eq}) + "\n"); out.flush()
"""


class _SymbolicWorker:
    """One long-lived `python -c` process running math_verify; restarted after a hang or crash.

    Thread-safe (one request at a time) and fork-aware (a forked child starts its own worker).
    """

    inner_timeout_s = 2
    memory_mb = 2048

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = os.getpid()
        self._buf = b""
        self._seq = 0
        self.available = True

    def _start(self, deadline: float) -> subprocess.Popen[bytes] | None:
        mem = self.memory_mb * 1024 * 1024

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))

        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER_SRC, str(self.inner_timeout_s)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                preexec_fn=limit,
            )
        except OSError:
            self.available = False
            return None
        self._proc, self._buf = proc, b""
        if self._readline(deadline + 30) != b"ready":  # first start imports sympy (~1 s)
            self.available = False
            self._kill()
            return None
        return proc

    def _readline(self, deadline: float) -> bytes | None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.strip()

    def _kill(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.kill()
            with contextlib.suppress(Exception):
                self._proc.wait(timeout=5)
            for stream in (self._proc.stdin, self._proc.stdout):
                with contextlib.suppress(Exception):
                    stream.close()  # type: ignore[union-attr]
        self._proc = None

    def compare(self, pred: str, gold: str, timeout_s: float) -> bool:
        """math_verify's verdict, or plain string equality if the worker cannot run; False on timeout."""
        with self._lock:
            if os.getpid() != self._pid:  # forked: the parent's pipes are not ours to use
                self._proc, self._pid, self._buf = None, os.getpid(), b""
            if not self.available:
                return pred == gold
            deadline = time.monotonic() + timeout_s
            proc = self._proc if self._proc and self._proc.poll() is None else self._start(deadline)
            if proc is None or proc.stdin is None:
                return pred == gold
            self._seq += 1
            try:
                proc.stdin.write((json.dumps({"id": self._seq, "p": pred, "g": gold}) + "\n").encode())
                proc.stdin.flush()
            except OSError:
                self._kill()
                return False
            while True:
                line = self._readline(deadline)
                if line is None:  # hung or died: kill it; the next call starts a fresh one
                    self._kill()
                    return False
                try:
                    reply = json.loads(line)
                    if reply["id"] == self._seq:
                        return bool(reply["eq"])
                except (ValueError, KeyError, TypeError):
                    continue  # not a reply: skip it

    def close(self) -> None:
        with self._lock:
            if os.getpid() == self._pid:
                self._kill()


_WORKER = _SymbolicWorker()
atexit.register(_WORKER.close)
