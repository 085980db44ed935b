"""Small helpers every task shares: prompt templates filled by slot name, and answer-pattern extraction."""

from __future__ import annotations

import re

from acqsynth.errors import AcqsynthError
from acqsynth.tasks.base import Messages


def fill_template(template: str, **slots: str) -> str:
    """Replace `{name}` for each given slot name only; every other brace (LaTeX, code) is left alone.

    Why not `str.format`: questions and templates contain `\\frac{1}{2}` and dict literals.
    Replacement is done in one pass so a slot value that itself contains `{choices}` is not re-filled.
    """
    if not slots:
        return template
    pattern = re.compile(r"\{(" + "|".join(re.escape(k) for k in slots) + r")\}")
    return pattern.sub(lambda m: slots[m.group(1)], template)


def check_template(template: str, required: tuple[str, ...], where: str) -> None:
    """Raise if a prompt template lacks one of its required `{slot}`s (a typo would silently drop it)."""
    missing = [s for s in required if "{" + s + "}" not in template]
    if missing:
        slots = ", ".join("{" + s + "}" for s in missing)
        raise AcqsynthError(f"{where}: the template must contain {slots}")


def compile_answer_pattern(pattern: str | None, where: str) -> re.Pattern[str] | None:
    """Compile a user `answer_pattern`: a regex with exactly one capturing group (the answer)."""
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise AcqsynthError(f"{where}: answer_pattern is not a valid regex ({e})") from None
    if compiled.groups != 1:
        raise AcqsynthError(f"{where}: answer_pattern must have exactly one group, it has {compiled.groups}")
    return compiled


def last_group(pattern: re.Pattern[str] | None, text: str) -> str | None:
    """Group 1 of the last match of `pattern` in `text` (the final answer is usually the last one)."""
    if pattern is None:
        return None
    found = None
    for m in pattern.finditer(text):
        found = m.group(1)
    if found is None:
        return None
    found = found.strip()
    return found or None


def chat(system: str | None, user: str) -> Messages:
    """A one-turn conversation, with an optional system message first."""
    messages: Messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user})
    return messages
