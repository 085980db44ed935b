"""Seed-conditioned generator prompts: one seed example shown for difficulty, a new problem asked for.

A template is a plain text file with named slots, filled by name (never by position: the reference
code swapped the reasoning and answer slots). Slots: `{question}`, `{reasoning}`, `{answer}`,
`{choices}` (multiple choice, one `A. text` line per option), `{n_choices}`, `{tests}` (code).
Built-in templates live in `generation/templates/<kind>.txt`; a user passes their own file.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample
from acqsynth.tasks.base import Messages
from acqsynth.tasks.common import chat, check_template, fill_template
from acqsynth.tasks.mcqa import render_choices

TEMPLATE_KINDS = ("math", "mcqa", "code", "default")
"""Built-in template names; any other task uses `default` (question, reasoning, answer only)."""
REQUIRED_SLOTS = {
    "math": ("question", "answer"),
    "mcqa": ("question", "choices", "answer"),
    "code": ("question", "answer", "tests"),
    "default": ("question", "answer"),
}
"""Slots a template for each kind must contain, so that the seed example is really shown."""
_CALCULATOR = re.compile(r"<<[^<>]*>>")


def template_kind(task_name: str) -> str:
    """The built-in template kind for a task name: its own if built in, else `default`."""
    return task_name if task_name in TEMPLATE_KINDS else "default"


def load_template(kind_or_path: str) -> str:
    """A built-in template by kind, or the text of a user's template file."""
    if kind_or_path in TEMPLATE_KINDS:
        return resources.files("acqsynth.generation").joinpath("templates", f"{kind_or_path}.txt").read_text()
    path = Path(kind_or_path)
    if not path.is_file():
        raise AcqsynthError(
            f"generator template {kind_or_path!r}: no such file (built-in templates: {', '.join(TEMPLATE_KINDS)})"
        )
    return path.read_text(encoding="utf-8")


def seed_reasoning(sample: Sample) -> str:
    """The seed's worked solution as shown to the generator (GSM8K calculator marks `<<a*b=c>>` removed)."""
    reasoning = sample.reasoning or ""
    answer = sample.answer
    if not reasoning and "####" in answer:  # a raw GSM8K answer: "work... #### 18"
        reasoning = answer.rsplit("####", 1)[0]
    reasoning = _CALCULATOR.sub("", reasoning).strip()
    return reasoning or "(no worked solution given)"


def seed_answer(sample: Sample) -> str:
    """The seed's final answer (the part after `####` for a raw GSM8K answer)."""
    answer = sample.answer
    return answer.rsplit("####", 1)[1].strip() if "####" in answer else answer.strip()


class PromptBuilder:
    """Builds the generator's chat prompt for a seed sample from a template filled by slot name."""

    def __init__(
        self, kind: str, template: str | None = None, system: str | None = None, response_prefix: str = "<question>"
    ) -> None:
        """`kind` is a template kind (`math`, `mcqa`, `code`, `default`); `template` a path that overrides it.

        `response_prefix` starts the generator's answer (an assistant-turn prefill the model continues):
        with `<question>` even a 135M model writes the tagged format far more often. Empty: no prefill.
        The pipeline puts the prefix back in front of the completion before parsing."""
        self.response_prefix = response_prefix
        if kind not in TEMPLATE_KINDS:
            raise AcqsynthError(f"unknown template kind {kind!r}; choose one of {', '.join(TEMPLATE_KINDS)}")
        self.kind = kind
        self.template = load_template(template or kind)
        check_template(self.template, REQUIRED_SLOTS[kind], f"generator template ({template or kind})")
        self.system = system

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
        }

    def __call__(self, seed: Sample) -> Messages:
        """One user turn asking for a new problem like `seed` (plus the optional system message), and
        the response prefix as a partial assistant turn."""
        messages = chat(self.system, fill_template(self.template, **self.slots(seed)))
        if self.response_prefix:
            messages.append({"role": "assistant", "content": self.response_prefix})
        return messages
