"""A GBNF grammar for a template's tagged output format, for constrained decoding.

Small generators break the tagged format far more often than they write a bad problem: without it,
SmolLM2-135M's GSM8K completions parsed in under 1 of 20 attempts (docs/results.md). With the
grammar, llama.cpp samples only tokens that keep the completion inside the format: every tag once,
in the template's order, closed, no field empty, nothing after the last tag. Every completion that
ends before `max_new_tokens` is then well-formed for `parsing.parse_completion`, and what remains to
reject is content (copied placeholders, duplicate options, labels, hygiene) or a completion cut off
by the length limit.

The tag order is read from the template's example answer (its first assistant turn holding tags),
so a user's template with another order gets its own grammar. Field rules by task kind:
- prose fields (question, reasoning, ...) contain no `<`, so a model that starts the next tag must
  first close the current one (the mistake small models make most);
- code fields (`answer` and `tests` of the code kind) may contain `<` (`a < b`, `x << 1`), never `</`;
- a math answer is a number (the built-in math templates ask for "the final answer only (a
  number)"; for other answers, e.g. LaTeX fractions, leave the grammar off);
- multiple-choice options are lines `A. …`, `B. …`, … in order and the answer is one of their
  letters: exactly `n_choices` of them when given, else 2 to 8 with the answer among those written.
"""

from __future__ import annotations

import re

from acqsynth.errors import AcqsynthError
from acqsynth.generation.parsing import CORE_TAGS, EXTRA_TAGS

_OPEN_TAG = re.compile(r"<([A-Za-z_][A-Za-z0-9_-]*)>", re.ASCII)
MAX_CHOICES = 8
"""Most options the multiple-choice grammar allows when the number is not fixed."""
_WS = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
"""Every character Python's `str.strip()` removes: a field of only these is empty to the parser."""
_LINE_BREAKS = "\\n\\x0b\\x0c\\r\\x1c-\\x1e\\x85\\u2028\\u2029"
"""Every character `str.splitlines()` splits at: an option must stay on its line."""
_HELPERS = {
    "text": f"[{_WS}]* [^<{_WS}] [^<]*",
    "code": f'[{_WS}]* ([^<{_WS}] | "<"+ [^</]) ([^<] | "<"+ [^</])*',
    "number": '"-"? ([0-9]{1,3} ("," [0-9]{3})+ | [0-9]{1,15}) ("." [0-9]{1,6})?',
    "option": f'" "? [^<{_WS}] [^<{_LINE_BREAKS}]*',
    "nl": '"\\n"',
    "ws": "[ \\t\\n]{0,3}",
}


def template_tags(turns: list[tuple[str, str]]) -> list[str]:
    """The tags of the template's example answer, in order (its first assistant turn holding
    tags); empty if it shows none."""
    for role, text in turns:
        if role == "assistant":
            tags = [t for t in _OPEN_TAG.findall(text) if f"</{t}>" in text]
            if tags:
                return list(dict.fromkeys(tags))
    return []


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _options(n: int) -> str:
    return " ".join(f'nl "{chr(ord("A") + i)}." option' for i in range(n)) + " nl"


def _letter(n: int) -> str:
    return f'" "? [A-{chr(ord("A") + n - 1)}] " "?'


def _field_rule(tag: str, kind: str, n_choices: int | None) -> str:
    if kind == "math" and tag == "answer":
        return '" "? number " "?'
    if kind == "mcqa" and tag in ("answer", "choices"):
        assert n_choices is not None, "format_grammar writes a varying number of options itself"
        return _letter(n_choices) if tag == "answer" else _options(n_choices)
    return "code" if kind == "code" and tag in ("answer", "tests") else "text"


def format_grammar(
    turns: list[tuple[str, str]], kind: str, response_prefix: str = "", n_choices: int | None = None
) -> str:
    """GBNF for the completion that follows `response_prefix`, in the format the template shows.

    `response_prefix` (the final assistant turn, e.g. `<question>`) is already in the prompt, so the
    grammar starts after it; it must be empty or the first opening tag. `n_choices` fixes the number
    of multiple-choice options (2 to 26); None allows 2 to MAX_CHOICES, which needs `<answer>` to
    follow `<choices>` directly so that the answer letter can be tied to the options written.
    """
    tags = template_tags(turns)
    if not tags:
        raise AcqsynthError(
            "a format grammar needs the template to show a tagged example answer "
            "(an [assistant] turn such as <question>{question}</question><answer>{answer}</answer>)"
        )
    missing = [t for t in (*CORE_TAGS, *EXTRA_TAGS.get(kind, ())) if t not in tags]
    if missing:
        raise AcqsynthError(
            f"a format grammar for {kind} needs the template's example to show the tags "
            f"{', '.join(f'<{t}>' for t in missing)} (the parser requires them); it shows {', '.join(tags)}"
        )
    if n_choices is not None and not 2 <= n_choices <= 26:
        raise AcqsynthError(f"n_choices must be between 2 and 26 for a format grammar, got {n_choices}")
    prefix = response_prefix.strip()
    if prefix not in ("", f"<{tags[0]}>"):
        raise AcqsynthError(
            f"a format grammar needs the template's response prefix to be empty or <{tags[0]}>, got {prefix!r}"
        )
    tied = kind == "mcqa" and n_choices is None
    if tied and tags.index("answer") != tags.index("choices") + 1:
        raise AcqsynthError(
            "a format grammar with a varying number of options needs <answer> right after <choices> in the "
            "template; otherwise fix the number (--n-choices / n_choices)"
        )
    parts, rules = [], []
    for i, tag in enumerate(tags):
        opening = "" if (i == 0 and prefix) else f"{'ws ' if i else ''}{_literal(f'<{tag}>')} "
        if tied and tag == "answer":
            continue  # written together with the options, below
        if tied and tag == "choices":
            parts.append(f"{opening}choices-answer")
            alternatives = [
                f'({_options(n)} "</choices>" ws "<answer>" {_letter(n)} "</answer>")'
                for n in range(2, MAX_CHOICES + 1)
            ]
            rules.append(f"choices-answer ::= {' | '.join(alternatives)}")
            continue
        parts.append(f"{opening}field{i} {_literal(f'</{tag}>')}")
        rules.append(f"field{i} ::= {_field_rule(tag, kind, n_choices)}")
    rules.insert(0, f"root ::= {' '.join(parts)}")
    body = "\n".join(rules)
    rules += [f"{name} ::= {rule}" for name, rule in _HELPERS.items() if re.search(rf"\b{name}\b", body)]
    return "\n".join(rules) + "\n"
