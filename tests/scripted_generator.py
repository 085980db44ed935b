"""A deterministic stand-in for a language model, for tests of the generation pipeline (the thing
under test is the pipeline, not a model). It implements the Generator protocol.

As a *generator* (the prompt holds `<question>` tags) it writes, for seed index a, an addition
problem "Tom has X apples and buys Y more ..." with its answer (root seed s shifts a by 997·s), well-formed most of the time and
broken in a fixed pattern: a 5 mod 7 == 0 drops the </reasoning> tag, a % 7 == 3 gives a wrong
answer (caught by self-consistency), a % 11 == 4 repeats attempt a - 1 (a duplicate).
As an *answerer* (any other prompt) it solves "X ... Y more" as X + Y, except sample j % 4 == 3,
which answers X + Y + 1 (so agreement is 3/4 for k = 4 or 8).
A final assistant message (a response prefix) is continued: the text after the prefix is returned.
Counting 4 characters as a token, text beyond `max_new_tokens` is cut off (finish_reason 'length').
`ACQSYNTH_TEST_GEN_SLEEP` seconds of sleep per prompt let a test kill a run midway.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

from acqsynth.models.interfaces import Completion, GenerationParams
from acqsynth.models.sampling import seed_indices

NAMES = ["Tom", "Ana", "Raj", "Mei", "Olu", "Eva", "Kim", "Lea", "Sam", "Ivo", "Noa", "Zed", "Ada"]
ITEMS = ["apples", "pencils", "marbles", "stamps", "cookies", "shells", "coins", "books", "cards"]


def problem(a: int) -> tuple[str, int]:
    """The question written at seed index `a`, and its true answer."""
    x, y = 3 + (a * 7) % 50, 2 + (a * 13) % 40
    name, item = NAMES[a % len(NAMES)], ITEMS[(a // len(NAMES)) % len(ITEMS)]
    q = f"{name} has {x} {item} and then buys {y} more {item} at market number {a}. How many {item} does {name} have now?"
    return q, x + y


def write_problems(path: Path, first: int = 5000, n: int = 80) -> Path:
    """A JSONL dataset of the problems at indices first..first+n (far from the generator's own, so no
    contamination), for runs whose seeds, pool and evaluation come from it."""
    with path.open("w") as f:
        for a in range(first, first + n):
            q, ans = problem(a)
            f.write(json.dumps({"id": f"apples-{a}", "question": q, "answer": str(ans)}) + "\n")
    return path


SCRIPTED = str(Path(__file__).resolve().parent / "scripted_generator.py") + ":ScriptedGenerator"
"""The generator spec (FILE.py:NAME) that loads this module's ScriptedGenerator."""


def completion_for(a: int) -> str:
    """The tagged completion the scripted generator writes at seed index `a`."""
    if a % 11 == 4:
        a -= 1
    q, ans = problem(a)
    if a % 7 == 3:
        ans += 5
    reasoning = f"Add the two amounts: {ans}." if a % 7 == 3 else f"{q.split(' has ')[1].split(' ')[0]} plus more gives {ans}."
    close = "" if a % 7 == 5 else "</reasoning>"
    return f"Here is a new problem.\n<question>{q}</question>\n<reasoning>{reasoning}{close}\n<answer>{ans}</answer>"


class ScriptedGenerator:
    """See the module docstring."""

    def __init__(self, name: str = "scripted") -> None:
        self.name = name
        self.calls = 0
        """Prompts answered (tests check that the cache spares calls)."""
        self.sleep = float(os.environ.get("ACQSYNTH_TEST_GEN_SLEEP", "0"))

    def generate(
        self, prompts: list[list[dict[str, str]]], params: GenerationParams, seed_index: Sequence[int] | None = None
    ) -> list[list[Completion]]:
        out = []
        for a, prompt in zip(seed_indices(len(prompts), seed_index), prompts, strict=True):
            self.calls += 1
            if self.sleep:
                time.sleep(self.sleep)
            text = next(m["content"] for m in prompt if m["role"] == "user")
            prefix = prompt[-1]["content"] if prompt[-1]["role"] == "assistant" else ""
            if "<question>" in text:
                body = completion_for(a + 997 * params.seed)  # another root seed writes other problems
                if prefix:  # continue the response prefix, as a model would
                    body = body.split(prefix, 1)[1] if prefix in body else body
                finish = "stop"
                if len(body) // 4 > params.max_new_tokens:  # a token is 4 characters here
                    body, finish = body[: 4 * params.max_new_tokens], "length"
                out.append([Completion(body, len(text) // 4, len(body) // 4, finish)] * params.n)
                continue
            m = re.search(r"has (\d+) \w+ and then buys (\d+) more", text)
            comps = []
            for j in range(params.n):
                if m is None:
                    reply = "I do not know."
                else:
                    total = int(m.group(1)) + int(m.group(2)) + (1 if j % 4 == 3 else 0)
                    reply = f"Adding gives {total}.\n#### {total}"
                comps.append(Completion(reply, len(text) // 4, len(reply) // 4, "stop"))
            out.append(comps)
        return out


def make() -> ScriptedGenerator:
    """Factory for `--generator tests/scripted_generator.py:make`."""
    return ScriptedGenerator()
