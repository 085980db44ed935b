"""Parse a generator's tagged completion into a Sample, with a reason for every rejection.

The generator is asked for `<question>…</question><reasoning>…</reasoning><answer>…</answer>`, plus
`<choices>…</choices>` (one option per line, `A. …`) for multiple choice and `<tests>…</tests>` for
code. Parsing never raises on any text: a completion is either a Sample or a rejection reason.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from acqsynth.samples import Sample

CORE_TAGS = ("question", "reasoning", "answer")
"""Tags every task's completion must hold exactly once."""
EXTRA_TAGS = {"mcqa": ("choices",), "code": ("tests",)}
"""Tags a task adds to the core ones."""
FORMAT_TAGS = ("<question>", "</question>", "<reasoning>", "</reasoning>", "<answer>", "</answer>")
"""The six tags the format reward counts."""
MAX_MATH_ANSWER_CHARS = 64
"""A math answer longer than this (or of more than 6 words) is prose, not a final answer."""
_FENCED = re.compile(r"^\s*```[A-Za-z0-9_+-]*[^\n]*\n(.*?)\n?```\s*$", re.DOTALL)
_CHOICE = re.compile(r"^\s*\(?([A-Z])[.):]\s*(.+?)\s*$")


@dataclass(frozen=True)
class Parsed:
    """The outcome of parsing one completion: a sample, or the reason there is none."""

    sample: Sample | None
    """The parsed sample (None when rejected)."""
    reason: str | None
    """Why the completion was rejected (None when accepted)."""


def format_reward(text: str) -> float:
    """acqsynth's own format reward: +0.125 per tag of `FORMAT_TAGS` present exactly once (in any layout),
    −0.001 per character of the stripped text after the latest closing tag; at most 0.75, at least 0.

    It follows the method's description, not the authors' code, which matches newline-bracketed
    strings (the inline layout scores 0) and charges every character after the question block (so it
    falls below 0 with a longer reasoning); docs/methods.md#the-format-reward-f."""
    reward = sum(0.125 for tag in FORMAT_TAGS if text.count(tag) == 1)
    closes = [text.rfind(t) + len(t) for t in FORMAT_TAGS[1::2] if t in text]
    if closes:
        reward -= 0.001 * len(text[max(closes) :].strip())
    return max(0.0, min(0.75, reward))


def _field(text: str, tag: str) -> tuple[str | None, str | None]:
    """(content, None) for a tag present exactly once and well-formed, else (None, reason)."""
    opens, closes = text.count(f"<{tag}>"), text.count(f"</{tag}>")
    if opens == 0 and closes == 0:
        return None, f"missing tag <{tag}>"
    if opens > 1 or closes > 1:
        return None, f"duplicate tag <{tag}>"
    if opens != closes:
        return None, f"unclosed tag <{tag}>"
    start, end = text.index(f"<{tag}>") + len(tag) + 2, text.index(f"</{tag}>")
    if end < start:
        return None, f"</{tag}> before <{tag}>"
    content = text[start:end].strip()
    if not content:
        return None, f"empty field <{tag}>"
    return content, None


def parse_choices(text: str) -> tuple[list[str] | None, str | None]:
    """Options written one per line as `A. text`, lettered A, B, C… in order."""
    options: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _CHOICE.match(line)
        if not m or m.group(1) != chr(ord("A") + len(options)):
            return None, f"choice line {line.strip()[:40]!r} is not '{chr(ord('A') + len(options))}. text'"
        options.append(m.group(2))
    return options, None


def strip_fence(code: str) -> str:
    """Code without one surrounding Markdown fence (```python ... ```), which small models often add."""
    m = _FENCED.match(code)
    return m.group(1).strip("\n") if m else code


def parse_completion(
    text: str,
    task: str = "math",
    source: str = "generated",
    max_chars: int = 8000,
    n_choices: int | None = None,
) -> Parsed:
    """Parse one completion for task kind `task` ('math', 'mcqa', 'code' or any other: core tags only).

    Rejection reasons: over-long, missing / duplicate / unclosed tag, empty field, malformed or wrong
    number of choices, duplicate choices, answer not among the choices, a math answer that is prose
    rather than a short final answer, code that does not compile or defines no function.
    """
    if not isinstance(text, str):
        return Parsed(None, "completion is not text")
    if len(text) > max_chars:
        return Parsed(None, f"over-long: {len(text)} characters > {max_chars}")
    fields: dict[str, str] = {}
    for tag in (*CORE_TAGS, *EXTRA_TAGS.get(task, ())):
        content, reason = _field(text, tag)
        if reason:
            return Parsed(None, reason)
        fields[tag] = content  # type: ignore[assignment]
    choices, tests, entry_point = None, None, None
    answer = fields["answer"]
    if task == "mcqa":
        choices, reason = parse_choices(fields["choices"])
        if reason:
            return Parsed(None, reason)
        assert choices is not None
        if len(choices) < 2 or (n_choices is not None and len(choices) != n_choices):
            want = n_choices if n_choices is not None else "at least 2"
            return Parsed(None, f"wrong number of choices: {len(choices)} (want {want})")
        if len({" ".join(c.casefold().split()) for c in choices}) < len(choices):
            return Parsed(None, "duplicate choices: two options have the same text")
        letter = answer.strip().strip("().").upper()
        if len(letter) == 1 and "A" <= letter < chr(ord("A") + len(choices)):
            answer = letter
        elif answer.strip() in choices:
            answer = chr(ord("A") + choices.index(answer.strip()))
        else:
            return Parsed(None, f"answer {answer[:40]!r} is not among the choices")
    if task == "math" and (len(answer) > MAX_MATH_ANSWER_CHARS or len(answer.split()) > 6):
        return Parsed(None, f"answer is not a short final answer ({len(answer)} characters)")
    if task == "code":
        answer, tests = strip_fence(answer), strip_fence(fields["tests"])
        for name, code in (("answer", answer), ("tests", tests)):
            try:
                compile(code, f"<{name}>", "exec")
            except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as e:
                return Parsed(None, f"{name} code does not compile: {type(e).__name__}")
        m = re.search(r"^def\s+([A-Za-z_]\w*)\s*\(", answer, re.MULTILINE)
        if not m:
            return Parsed(None, "answer code defines no function")
        entry_point = m.group(1)
    digest = hashlib.sha256(f"{fields['question']}\x1f{answer}".encode()).hexdigest()[:16]
    sample = Sample(
        id=f"gen-{digest}",
        question=fields["question"],
        answer=answer,
        reasoning=fields["reasoning"],
        choices=choices,
        tests=tests,
        entry_point=entry_point,
        source=source,
    )
    return Parsed(sample, None)
