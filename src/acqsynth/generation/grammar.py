"""A GBNF grammar for a template's tagged output format, for constrained decoding.

Small generators break the tagged format far more often than they write a bad problem: SmolLM2-135M
closed `<question>` in under 1 of 20 GSM8K attempts (docs/results.md). With the grammar, llama.cpp
samples only tokens that keep the completion inside the format (every tag once, in the template's
order, closed, nothing after the last one), so the parser's format rejections disappear and the
remaining rejections are about content (placeholders, duplicates, labels, hygiene).

The tag order is read from the template's example answer (its first assistant turn holding tags),
so a user's template with other tags or another order gets its own grammar. Field rules by task:
a math answer is a number (the built-in math templates ask for "the final answer only (a
number)"; write your own template and leave the grammar off for other answers); multiple-choice options
are lines `A. …`, `B. …`, … in order (as many as the seeds show, else 2 to 8) and the answer one
of those letters; code fields are
free text without `</`; every other field is text without `<`, so a model that starts the next tag
must first close the current one (the mistake small models make most).
"""

from __future__ import annotations

import re

from acqsynth.errors import AcqsynthError

_OPEN_TAG = re.compile(r"<([A-Za-z_][\w-]*)>")
MAX_CHOICES = 8
"""Most options the multiple-choice grammar allows."""


def template_tags(turns: list[tuple[str, str]]) -> list[str]:
    """The tags of the template's example answer, in order: its first assistant turn holding tags."""
    for role, text in turns:
        if role == "assistant":
            tags = [t for t in _OPEN_TAG.findall(text) if f"</{t}>" in text]
            if tags:
                return list(dict.fromkeys(tags))
    raise AcqsynthError(
        "a format grammar needs the template to show a tagged example answer "
        "(an [assistant] turn such as <question>{question}</question><answer>{answer}</answer>)"
    )


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _field_rule(tag: str, kind: str, n_choices: int | None) -> str:
    if kind == "math" and tag == "answer":  # the math templates ask for "the final answer only (a number)"
        return '" "? "-"? [0-9] [0-9,]{0,15} ("." [0-9]{1,6})? " "?'
    letters = [chr(ord("A") + i) for i in range(n_choices or MAX_CHOICES)]
    if kind == "mcqa" and tag == "answer":
        return f'" "? [A-{letters[-1]}] " "?'
    if kind == "mcqa" and tag == "choices":
        required = 2 if n_choices is None else n_choices
        optional = ""
        for letter in reversed(letters[required:]):
            optional = f'(nl "{letter}." option{" " + optional if optional else ""})?'
        rule = " ".join(f'nl "{letter}." option' for letter in letters[:required])
        return f"{rule} {optional} nl" if optional else f"{rule} nl"
    return "code" if kind == "code" else "text"


def format_grammar(
    turns: list[tuple[str, str]], kind: str, response_prefix: str = "", n_choices: int | None = None
) -> str:
    """GBNF for the completion that follows `response_prefix`, in the format the template shows.

    `n_choices` fixes the number of multiple-choice options (None: 2 to MAX_CHOICES).
    `response_prefix` (the final assistant turn, e.g. `<question>`) is already in the prompt, so the
    grammar starts after it; it must be empty or the first opening tag.
    """
    tags = template_tags(turns)
    prefix = response_prefix.strip()
    if prefix not in ("", f"<{tags[0]}>"):
        raise AcqsynthError(
            f"a format grammar needs the template's response prefix to be empty or <{tags[0]}>, got {prefix!r}"
        )
    parts = []
    for i, tag in enumerate(tags):
        opening = "" if (i == 0 and prefix) else f"{'ws ' if i else ''}{_literal(f'<{tag}>')} "
        parts.append(f"{opening}{tag.replace('_', '-')}-field {_literal(f'</{tag}>')}")
    rules = [f"root ::= {' '.join(parts)}"]
    rules += [f"{tag.replace('_', '-')}-field ::= {_field_rule(tag, kind, n_choices)}" for tag in tags]
    helpers = {
        "text": "[^<]+",
        "code": '([^<] | "<" [^/])+',
        "option": "[ ]? [^<\\n]+",
        "nl": '"\\n"',
        "ws": "[ \\t\\n]{0,3}",
    }
    body = "\n".join(rules)
    rules += [f"{name} ::= {rule}" for name, rule in helpers.items() if re.search(rf"\b{name}\b", body)]
    return "\n".join(rules) + "\n"
