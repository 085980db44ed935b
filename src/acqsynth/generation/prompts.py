"""Seed-conditioned generator prompts: one seed example shown for difficulty, a new problem asked for.

A template is a plain text file with named slots, filled by name (never by position: the reference
code swapped the reasoning and answer slots). Slots: `{question}`, `{reasoning}`, `{answer}`,
`{choices}` (multiple choice, one `A. text` line per option), `{n_choices}`, `{tests}` (code),
`{student_answer}` (the student's wrong answer to the seed, for the mistakes strategy).
Built-in templates live in `generation/templates/<kind>.txt`; a user passes their own file.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from acqsynth.errors import AcqsynthError, suggest
from acqsynth.generation.grammar import format_grammar, template_tags
from acqsynth.samples import Sample
from acqsynth.tasks.base import Messages
from acqsynth.tasks.common import check_template, fill_template
from acqsynth.tasks.mcqa import render_choices

TEMPLATE_KINDS = ("math", "mcqa", "code", "default")
"""Template kinds, one per task family; any other task uses `default` (question, reasoning, answer only)."""
BUILTIN_TEMPLATES = (*TEMPLATE_KINDS, "arithmetic", "arithmetic-mistakes", "math-mistakes")
"""Built-in template files: one per kind, plus `arithmetic` (math kind: bare expressions, no word
problems) and the mistake-targeted versions of `arithmetic` and `math` (a `{student_answer}` slot)."""
REQUIRED_SLOTS = {
    "math": ("question", "answer"),
    "mcqa": ("question", "choices", "answer"),
    "code": ("question", "answer", "tests"),
    "default": ("question", "answer"),
}
"""Slots a template for each kind must contain, so that the seed example is really shown."""
_CALCULATOR = re.compile(r"<<[^<>]*>>")
_TAGGED = re.compile(r"<(question|reasoning|answer|tests)>\s*(.*?)\s*</\1>", re.DOTALL)


def _norm(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" .")


_ROLE = re.compile(r"^\[(system|user|assistant)\]\s*$")


def template_kind(task_name: str) -> str:
    """The built-in template kind for a task name: its own if built in, else `default`."""
    return task_name if task_name in TEMPLATE_KINDS else "default"


def load_template(kind_or_path: str) -> str:
    """A built-in template by kind, or the text of a user's template file."""
    if kind_or_path in BUILTIN_TEMPLATES:
        return (resources.files("acqsynth.generation") / "templates" / f"{kind_or_path}.txt").read_text()
    path = Path(kind_or_path)
    if not path.is_file():
        raise AcqsynthError(
            f"generator template {kind_or_path!r}: no such file{suggest(kind_or_path, BUILTIN_TEMPLATES)} "
            f"(built-in templates: {', '.join(BUILTIN_TEMPLATES)})"
        )
    return path.read_text(encoding="utf-8")


def seed_reasoning(sample: Sample) -> str:
    """The seed's worked solution as shown to the generator (GSM8K calculator marks `<<a*b=c>>` removed)."""
    reasoning = sample.reasoning or ""
    answer = sample.answer
    if not reasoning and "####" in answer:  # a raw GSM8K answer: "work... #### 18"
        reasoning = answer.rsplit("####", 1)[0]
    reasoning = _CALCULATOR.sub("", reasoning).strip()
    return reasoning or f"The answer is {seed_answer(sample)}."


def seed_answer(sample: Sample) -> str:
    """The seed's final answer (the part after `####` for a raw GSM8K answer)."""
    answer = sample.answer
    return answer.rsplit("####", 1)[1].strip() if "####" in answer else answer.strip()


def split_roles(template: str) -> list[tuple[str, str]]:
    """A template as (role, text) turns: lines `[system]`, `[user]`, `[assistant]` start a turn; a
    template without them is one user turn. Newlines around each turn's text are dropped."""
    turns: list[tuple[str, list[str]]] = []
    for line in template.splitlines():
        m = _ROLE.match(line)
        if m:
            turns.append((m.group(1), []))
        elif turns:
            turns[-1][1].append(line)
        elif line.strip():
            turns.append(("user", [line]))
    return [(role, "\n".join(lines).strip("\n")) for role, lines in turns]


class PromptBuilder:
    """Builds the generator's chat prompt for a seed sample from a template filled by slot name.

    The built-in templates are a short conversation: the format is asked for, the seed is shown as
    the assistant's (tagged) answer, a new problem is asked for, and the last assistant turn holds
    the *response prefix* `<question>`, which the model continues. Small models keep the format
    far more often this way than from an instruction alone.
    """

    def __init__(self, kind: str, template: str | None = None, system: str | None = None) -> None:
        """`kind` is a template kind (`math`, `mcqa`, `code`, `default`); `template` a path that overrides it."""
        if kind not in TEMPLATE_KINDS:
            raise AcqsynthError(f"unknown template kind {kind!r}; choose one of {', '.join(TEMPLATE_KINDS)}")
        self.kind = kind
        self.template = load_template(template or kind)
        check_template(self.template, REQUIRED_SLOTS[kind], f"generator template ({template or kind})")
        self.turns = split_roles(self.template)
        if not any(role == "user" for role, _ in self.turns):
            raise AcqsynthError(f"generator template ({template or kind}) holds no user turn")
        self.system = system
        last_role, last_text = self.turns[-1]
        self.response_prefix = last_text if last_role == "assistant" else ""
        """The start of the generator's answer; the pipeline puts it back in front of the completion."""
        self.placeholders = {
            (tag, _norm(text)) for tag, text in _TAGGED.findall(self.template) if "{" not in text and _norm(text)
        }
        """(tag, text) of the format description's placeholder fields, e.g. ("reasoning", "the solution")."""
        shown = template_tags(self.turns)
        last_tag = shown[-1] if shown else {"code": "tests"}.get(kind, "answer")
        self.stop = [f"</{last_tag}>"]
        """Generation stops at the closing tag of the template's last field (nothing after it is wanted)."""

    def grammar(self, n_choices: int | None = None) -> str:
        """GBNF for a completion in this template's tagged format (see `generation/grammar.py`);
        `n_choices` fixes the number of multiple-choice options."""
        return format_grammar(self.turns, self.kind, self.response_prefix, n_choices)

    def slots(self, seed: Sample) -> dict[str, str]:
        """The named slot values for one seed."""
        choices = seed.choices or []
        return {
            "question": seed.question.strip(),
            "reasoning": seed_reasoning(seed),
            "answer": seed_answer(seed),
            "choices": render_choices(choices),
            "n_choices": str(len(choices) or 4),
            "tests": (seed.tests or "").strip(),
            "student_answer": str(seed.metadata.get("student_answer", "")),
        }

    def __call__(self, seed: Sample) -> Messages:
        """The conversation asking for a new problem like `seed`, ending in the response prefix."""
        slots = self.slots(seed)
        messages: Messages = [{"role": "system", "content": self.system}] if self.system else []
        messages += [{"role": role, "content": fill_template(text, **slots)} for role, text in self.turns]
        return messages

    def copied_placeholder(self, sample: Sample) -> str | None:
        """The tag whose content just repeats the template's placeholder (e.g. a reasoning that reads
        "why the correct option is right"), or None."""
        fields = {"question": sample.question, "reasoning": sample.reasoning or "", "answer": sample.answer,
                  "tests": sample.tests or ""}
        for tag, text in fields.items():
            if (tag, _norm(text)) in self.placeholders:
                return tag
        return None

    def complete(self, text: str, finish_reason: str) -> str:
        """The whole tagged answer: the response prefix, the completion, and the closing tag that
        generation stopped at (stop strings are cut from completions)."""
        full = self.response_prefix + text
        close = self.stop[0]
        if finish_reason == "stop" and close.replace("/", "") in full and close not in full:
            full += close
        return full
