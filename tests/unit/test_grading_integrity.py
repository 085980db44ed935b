"""The code grader's verdict cannot be forged by the candidate: every attack below pairs a wrong
solution with a way to make a single-interpreter grader report a pass, and must fail; the honest
solution must pass. The candidate and the tests run in separate processes (tasks/code_harness.py)."""

from __future__ import annotations

import os

import pytest

from acqsynth.samples import Sample
from acqsynth.tasks import CodeTask

TASK = CodeTask(timeout_s=5, memory_mb=512)
PROBLEM = Sample(
    id="he/add",
    question='def add(a, b):\n    """a + b"""\n',
    answer="    return a + b\n",
    tests="def check(candidate):\n    assert candidate(2, 3) == 5\n    assert abs(candidate(0.5, 0.25) - 0.75) < 1e-9\n",
    entry_point="add",
)
WRONG = "def add(a, b):\n    return a - b\n"
FIND_TOKEN = """
def _found(text):
    import re
    hit = re.search(r"ACQSYNTH-[0-9a-f]{24}", text)
    if hit:  # print it and end with success, as if the tests had run
        import os
        os.write(1, ("\\n" + hit.group(0) + "\\n").encode())
        os._exit(0)
"""

ATTACKS = {
    "exec made a no-op": "import builtins\nbuiltins.exec = lambda *a, **k: None\n" + WRONG,
    "compile made a no-op": "import builtins\n_real = compile\n"
                            "builtins.compile = lambda *a, **k: _real('pass', '<x>', 'exec')\n" + WRONG,
    "token read from the stack frames": FIND_TOKEN + """
import sys
f = sys._getframe()
while f is not None:
    for value in list(f.f_code.co_consts) + list(f.f_locals.values()) + list(f.f_globals.values()):
        if isinstance(value, str):
            _found(value)
    f = f.f_back
""" + WRONG,
    "token read from every live object": FIND_TOKEN + """
import gc
for o in gc.get_objects():
    if isinstance(o, str):
        _found(o)
""" + WRONG,
    "token read from the driver file, stdin and the parent's files": FIND_TOKEN + """
import os
for path in ["main.py", "/proc/self/cmdline", f"/proc/{os.getppid()}/cmdline", f"/proc/{os.getppid()}/environ",
             f"/proc/{os.getppid()}/fd/0", "/dev/stdin"]:
    try:
        with open(path, "rb") as fh:
            _found(fh.read(100000).decode("utf-8", "replace"))
    except OSError:
        pass
try:
    _found(os.read(0, 100000).decode("utf-8", "replace"))
except OSError:
    pass
""" + WRONG,
    "token read from the parent's memory": FIND_TOKEN + """
import os
try:
    with open(f"/proc/{os.getppid()}/maps") as maps, open(f"/proc/{os.getppid()}/mem", "rb") as mem:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            try:
                mem.seek(lo)
                _found(mem.read(min(hi - lo, 1 << 22)).decode("latin-1"))
            except (OSError, ValueError, OverflowError):
                pass
except OSError:
    pass
""" + WRONG,
    "check redefined": "import builtins\ndef check(candidate):\n    pass\nbuiltins.check = check\n" + WRONG,
    "an answer equal to everything": "class _Any:\n    def __eq__(self, other):\n        return True\n"
                                     "    def __sub__(self, other):\n        return 0\n"
                                     "def add(a, b):\n    return _Any()\n",
    "a built-in shadowed": "def abs(x):\n    return 0\n" + "def add(a, b):\n    return 5 if (a, b) == (2, 3) else 7\n",
    "the tests' process killed, then exit 0": "import os, signal\n" + WRONG +
                                              "os.kill(os.getppid(), signal.SIGKILL)\nos._exit(0)\n",
    "a guessed token printed at exit": "import atexit\natexit.register(lambda: print('ACQSYNTH-' + '0' * 24))\n" + WRONG,
}

CYCLIC = Sample(
    id="he/38", entry_point="decode_cyclic",
    question=('def encode_cyclic(s: str):\n    """cycles groups of three characters."""\n'
              '    groups = [s[(3 * i):min((3 * i + 3), len(s))] for i in range((len(s) + 2) // 3)]\n'
              '    groups = [(group[1:] + group[0]) if len(group) == 3 else group for group in groups]\n'
              '    return "".join(groups)\n\n\ndef decode_cyclic(s: str):\n    """the inverse of encode_cyclic."""\n'),
    answer="    return encode_cyclic(encode_cyclic(s))\n",
    tests=("def check(candidate):\n    for s in ['abcdef', 'hello world', 'xy']:\n"
           "        assert candidate(encode_cyclic(s)) == s\n"),
)


def test_the_problems_own_helpers_are_not_the_candidates() -> None:
    """HumanEval/38's tests call the prompt's encode_cyclic: a candidate that redefines it as the identity
    (and decodes by identity) must fail; the reference solution passes."""
    forged = "def encode_cyclic(s):\n    return s\n\ndef decode_cyclic(s):\n    return s\n"
    assert not TASK.grade(f"```python\n{forged}```", CYCLIC).correct
    assert TASK.grade(CYCLIC.answer, CYCLIC).reason == "passed"


@pytest.mark.parametrize(("name", "code", "tests"), [
    ("StopIteration from a call ends the tests' all()", "def add(a, b):\n    raise StopIteration\n",
     "assert all(map(lambda x: add(x, x) == 2 * x, [1, 2, 3]))\n"),
    ("a module bound under another module's name", "import os as math\ndef add(a, b):\n    return a - b\n",
     "assert math.isclose(add(2, 3), 5)\n"),
])
def test_more_forgeries_fail(name: str, code: str, tests: str) -> None:
    sample = Sample(id="x", question="", answer="", entry_point="add", tests=tests)
    assert not TASK.grade(f"```python\n{code}```", sample).correct, name


def test_honest_values_of_other_types_cross() -> None:
    """numpy scalars arrive as int/float; an exception subclass as its built-in base, which tests may catch."""
    sample = Sample(id="n", question="", answer="", entry_point="f",
                    tests="assert f(3) == 6 and isinstance(f(3), int)\ntry:\n    f(-1)\nexcept ValueError:\n    pass\n"
                          "else:\n    raise AssertionError('not raised')\n")
    code = ("import numpy as np\nclass Negative(ValueError):\n    pass\n"
            "def f(x):\n    if x < 0:\n        raise Negative(x)\n    return np.int64(2 * x)\n")
    assert TASK.grade(f"```python\n{code}```", sample).reason == "passed"


@pytest.mark.parametrize("name", list(ATTACKS))
def test_an_attack_on_the_verdict_fails(name: str) -> None:
    v = TASK.grade(f"```python\n{ATTACKS[name]}\n```", PROBLEM)
    assert not v.correct, f"{name}: {v.reason}"


def test_the_honest_solution_passes_and_tests_see_plain_values() -> None:
    assert TASK.grade("```python\ndef add(a, b):\n    return a + b\n```", PROBLEM).reason == "passed"
    # exceptions cross as the built-in type of the same name, so tests can catch them
    sample = Sample(id="x", question="", answer="", entry_point="f",
                    tests="try:\n    f(0)\nexcept ZeroDivisionError:\n    pass\nelse:\n    raise AssertionError\n")
    assert TASK.grade("```python\ndef f(x):\n    return 1 / x\n```", sample).correct


def test_objects_the_candidate_made_stay_there_and_compare_by_identity() -> None:
    """A class instance or a generator comes back as a reference: attributes, calls and iteration work,
    equality is the stand-in's identity."""
    node = Sample(id="n", question="", answer="", entry_point="depth",
                  tests="root = Node(1)\nroot.left = Node(2)\nroot.left.left = Node(3)\n"
                        "assert depth(root) == 3 and root.left.data == 2 and root.left is root.left\n"
                        "assert root != Node(1) and root == root\n")
    code = ("class Node:\n    def __init__(self, data):\n        self.data, self.left, self.right = data, None, None\n"
            "    def __eq__(self, other):\n        return True\n"
            "def depth(n):\n    return 0 if n is None else 1 + max(depth(n.left), depth(n.right))\n")
    assert TASK.grade(f"```python\n{code}```", node).reason == "passed"
    gen = Sample(id="g", question="", answer="", entry_point="g", tests="assert list(g()) == [1, 2]\n")
    assert TASK.grade("```python\ndef g():\n    yield 1\n    yield 2\n```", gen).correct
    counter = Sample(id="c", question="", answer="", entry_point="c", tests="assert c('aab') == {'a': 2, 'b': 1}\n")
    assert TASK.grade("```python\nfrom collections import Counter\ndef c(s):\n    return Counter(s)\n```", counter).correct


def test_a_candidate_function_named_like_a_built_in_is_the_entry_point() -> None:
    sample = Sample(id="s", question="", answer="", entry_point="sum", tests="assert sum(2, 3) == 5\n")
    assert TASK.grade("```python\ndef sum(a, b):\n    return a + b\n```", sample).correct


def test_a_fork_bomb_does_not_fail_its_honest_neighbours() -> None:
    """Concurrent candidates run as different uids (a root caller's sandbox), so one's process limit and
    signals cannot reach another: the bomb times out, the honest ones beside it pass."""
    bomb = "```python\nimport os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.001)\n```"
    honest = "```python\nimport time\ntime.sleep(0.3)\ndef add(a, b):\n    return a + b\n```"
    verdicts = TASK.grade_many([bomb, honest, honest, honest], [PROBLEM] * 4, max_workers=4)
    assert not verdicts[0].correct
    assert [v.reason for v in verdicts[1:]] == ["passed"] * 3


def test_concurrent_sandboxes_hold_different_uids() -> None:
    from acqsynth.sandbox import run_many
    from acqsynth.sandbox.runner import SANDBOX_UIDS, isolation

    out = run_many(["import os, time\ntime.sleep(0.5)\nprint(os.getuid())"] * 3, max_workers=3, timeout_s=10)
    uids = [int(r.stdout) for r in out]
    if isolation()["user"] == "sandbox-uid":
        assert len(set(uids)) == 3 and set(uids) <= set(SANDBOX_UIDS)
    else:  # without root the code keeps the caller's uid (docs/security.md)
        assert set(uids) == {os.getuid()}


def test_the_harness_imports_only_the_standard_library() -> None:
    """It is sent to the sandbox as source text and must run where acqsynth is not importable."""
    import ast
    import sys
    from pathlib import Path

    from acqsynth.tasks import code_harness

    tree = ast.parse(Path(code_harness.__file__).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert names - {"__future__"} <= set(sys.stdlib_module_names), names
