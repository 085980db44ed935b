"""Python programming problems (HumanEval, MBPP) graded by running the sample's tests in the sandbox.

The student's code runs in a fresh sandboxed process (`acqsynth.sandbox`), never in this one, and
never in the process that runs the tests: `tasks/code_harness.py` forks a candidate process that
executes the code (with `__name__ != "__main__"`, so a `if __name__ == "__main__": main()` block
that reads stdin does not run) and serves calls, while the test process runs the tests (with
`__name__ == "__main__"`, then `check(entry_point)` when the tests define `check`) against plain-data
proxies of the candidate's functions. Only then does the test process print a random token it read
from stdin after the fork: a run passes only if that token is printed, which nothing the candidate
does in its own interpreter can arrange (docs/security.md#grading-integrity).
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample
from acqsynth.sandbox.runner import SandboxResult, new_token, run_python
from acqsynth.tasks import code_harness
from acqsynth.tasks.base import Messages, Verdict
from acqsynth.tasks.common import chat, check_template, compile_answer_pattern, fill_template, last_group

DEFAULT_INSTRUCTION = "{question}\n\nReply with a complete Python solution in one ```python code block."

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_ERROR_MARK = code_harness.ERROR_MARK


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def _looks_like_code(text: str) -> bool:
    return re.match(r"\s*(?:def |from |import |class |@|#)", text) is not None


def _parses(code: str) -> bool:
    """Whether the code compiles (compiling runs nothing; it also catches 'return' outside a function)."""
    try:
        compile(code, "<candidate>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of every fenced block, in order; an unclosed last fence runs to the end."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def extract_code(text: str) -> str | None:
    """The code in a reply: the last ```python block, else the last untagged block, else the whole text."""
    blocks = code_blocks(text)
    tagged = [b for lang, b in blocks if lang in ("python", "py", "python3")]
    untagged = [b for lang, b in blocks if lang == ""]
    code = tagged[-1] if tagged else untagged[-1] if untagged else None
    if code is None:
        code = text
    code = code.rstrip()
    code = re.sub(r"\A(?:[ \t]*\n)+", "", code)  # leading blank lines; keep the indentation of line 1
    return code if code.strip() else None


def _header_imports(question: str) -> str:
    """The top-level import lines of a code-style question (HumanEval's `from typing import List`)."""
    lines = [ln for ln in question.splitlines() if re.match(r"(?:from\s+\S+\s+)?import\s", ln)]
    return "\n".join(lines)


def complete_program(code: str, sample: Sample) -> str:
    """The candidate as a whole program, for completions that continue the question (HumanEval).

    If the code does not define `entry_point` but the question does, the question is prepended
    (the completion is a function body; a body written without indentation is indented).
    Otherwise the question's import lines are prepended when the code lacks them.
    """
    q = sample.question or ""
    ep = sample.entry_point
    if ep and not _defines(code, ep) and _defines(q, ep):
        joined = q.rstrip() + "\n" + code
        if not _parses(joined):
            indented = "\n".join(("    " + ln) if ln.strip() else ln for ln in code.splitlines())
            alt = q.rstrip() + "\n" + indented
            if _parses(alt):
                joined = alt
        return joined
    if _looks_like_code(q):
        imports = [ln for ln in _header_imports(q).splitlines() if ln not in code]
        if imports:
            return "\n".join(imports) + "\n" + code
    return code


@functools.cache
def _harness_source() -> str:
    return Path(code_harness.__file__).read_text(encoding="utf-8")


def harness_program(candidate: str, tests: str, entry_point: str = "", trusted: str = "") -> str:
    """The program the sandbox runs: the harness, then `main(candidate, tests, entry_point, trusted)`."""
    return f"{_harness_source()}\n\nmain({candidate!r}, {tests!r}, {entry_point!r}, {trusted!r})\n"


def problem_helpers(question: str, entry_point: str) -> str:
    """The top-level statements of a code-style question other than the entry point's definition (a
    HumanEval prompt's imports and helper functions), as source; "" when the question is not Python."""
    try:
        tree = ast.parse(question)
    except (SyntaxError, ValueError):
        return ""
    kept = [node for node in tree.body if not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                                               and node.name == entry_point)]
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in kept):
        return ""  # imports alone: the candidate's own imports serve
    return ast.unparse(ast.Module(body=kept, type_ignores=[]))


def _failure(stderr: str) -> str:
    """'failed: Type: first line of message' from the driver's error marker (or the traceback)."""
    marks = [ln for ln in stderr.splitlines() if ln.startswith(_ERROR_MARK)]
    if marks:
        try:
            info = json.loads(marks[-1][len(_ERROR_MARK) :])
            etype, msg = str(info["type"]), str(info["msg"])
        except (ValueError, KeyError, TypeError):
            etype, msg = "Error", ""
        if etype == code_harness.EXITED:
            return "failed: exited before the tests finished"
        first = msg.strip().splitlines()[0].strip() if msg.strip() else ""
        if len(first) > 200:
            first = first[:200] + "..."
        return f"failed: {etype}: {first}" if first else f"failed: {etype}"
    tail = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return f"failed: {tail[-1].strip()[:200]}" if tail else "failed: non-zero exit"


class CodeTask:
    """Write a Python function; correct when the sample's tests pass in the sandbox.

    Reasons: passed, failed: <Type: message>, timeout, memory limit, output limit, syntax error,
    no code found. `timeout_s` and `memory_mb` are per-candidate sandbox limits.
    """

    kind = "code"
    """The built-in family: what parsing, labelling and templates treat it as."""

    def __init__(
        self,
        name: str = "code",
        *,
        system: str | None = None,
        instruction: str = DEFAULT_INSTRUCTION,
        answer_pattern: str | None = None,
        timeout_s: float = 10.0,
        memory_mb: int = 1024,
    ) -> None:
        check_template(instruction, ("question",), f"task {name!r} instruction")
        self.name = name
        self.system = system
        self.instruction = instruction
        self.answer_pattern = compile_answer_pattern(answer_pattern, f"task {name!r}")
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb

    def prompt(self, sample: Sample) -> Messages:
        """The problem (a code-style question shown in a ```python fence) and the reply format."""
        q = sample.question.strip("\n")
        shown = f"```python\n{q}\n```" if _looks_like_code(q) else q
        user = fill_template(self.instruction, question=shown, entry_point=sample.entry_point or "")
        ep = sample.entry_point
        if ep and ep not in user:
            user += f" The function must be named `{ep}`."
        return chat(self.system, user)

    def target(self, sample: Sample) -> str:
        """The reference solution as a complete program in a ```python block, after any reasoning."""
        code = complete_program(sample.answer.strip("\n"), sample)
        block = f"```python\n{code.rstrip()}\n```"
        reasoning = (sample.reasoning or "").strip()
        return f"{reasoning}\n{block}" if reasoning else block

    def extract(self, text: str, sample: Sample) -> str | None:
        """The candidate program (completed with the question for HumanEval-style bodies), or None."""
        found = last_group(self.answer_pattern, text)
        code = extract_code(found) if found is not None else None
        if code is None:
            code = extract_code(text)
        if code is None:
            return None
        return complete_program(code, sample)

    def _tests(self, sample: Sample) -> str:
        tests = sample.tests or ""
        if not tests.strip():
            raise AcqsynthError(f"sample {sample.id!r}: a code sample needs `tests` to be graded")
        ep = sample.entry_point
        if (
            ep
            and re.search(r"^def\s+check\s*\(", tests, re.MULTILINE)
            and not re.search(r"^check\s*\(", tests, re.MULTILINE)
        ):
            tests = tests.rstrip() + f"\n\ncheck({ep})\n"
        return tests

    def program(self, code: str, sample: Sample) -> str:
        """The full program run for one candidate (exposed for debugging and for batch runners); it
        passes only if it prints the token given on its stdin."""
        ep = sample.entry_point or ""
        return harness_program(code, self._tests(sample), ep, problem_helpers(sample.question, ep) if ep else "")

    def verdict(self, code: str, result: SandboxResult, token: str) -> Verdict:
        """Turn a sandbox result for `program(code, ...)`, run with `token` on stdin, into a Verdict."""
        if result.status == "timeout":
            return Verdict(False, code, "timeout")
        if result.status == "memory":
            return Verdict(False, code, "memory limit")
        if result.status == "output_limit":
            return Verdict(False, code, "output limit")
        if result.status == "ok":
            if token in result.stdout:
                return Verdict(True, code, "passed")
            return Verdict(False, code, "failed: exited before the tests finished")
        if result.status == "killed":
            return Verdict(False, code, f"failed: {result.detail}")
        return Verdict(False, code, _failure(result.stderr))

    def grade(self, prediction: str, sample: Sample) -> Verdict:
        """Run the extracted code against the sample's tests in the sandbox."""
        return self.grade_many([prediction], [sample], max_workers=1)[0]

    def grade_many(
        self, predictions: Sequence[str], samples: Sequence[Sample], max_workers: int = 2
    ) -> list[Verdict]:
        """Grade many predictions, running up to `max_workers` sandboxes at once; results in order."""
        if len(predictions) != len(samples):
            raise AcqsynthError(f"{len(predictions)} predictions for {len(samples)} samples")
        verdicts: list[Verdict | None] = [None] * len(samples)
        jobs: list[tuple[int, str, str, str]] = []
        for i, (pred, sample) in enumerate(zip(predictions, samples, strict=True)):
            code = self.extract(pred, sample)
            if code is None:
                verdicts[i] = Verdict(False, None, "no code found")
            elif not _parses(code):
                verdicts[i] = Verdict(False, code, "syntax error")
            else:
                jobs.append((i, code, new_token(), self.program(code, sample)))

        def run(job: tuple[int, str, str, str]) -> tuple[int, Verdict]:
            i, code, token, program = job
            result = run_python(program, timeout_s=self.timeout_s, memory_mb=self.memory_mb,
                                stdin=(token + "\n").encode())
            return i, self.verdict(code, result, token)

        with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
            for i, v in pool.map(run, jobs):
                verdicts[i] = v
        return [v for v in verdicts if v is not None]
