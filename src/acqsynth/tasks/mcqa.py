"""Multiple-choice questions (MMLU, MedMCQA, ARC, ...): the student answers with the option's letter.

Two ways to score a student on these:
- generation: the student writes free text, `extract` finds the chosen letter, `grade` compares it
  with the reference letter (what `MCQATask.grade` does);
- option log-likelihood: `option_continuations` gives a context ending in "Answer:" and one
  continuation per option; the evaluator picks the option with the highest log p(continuation |
  context). No text is generated, so it also works for students too weak to follow the format.
"""

from __future__ import annotations

import functools
import re
from typing import Literal

from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample
from acqsynth.tasks.base import Messages, Verdict
from acqsynth.tasks.common import chat, check_template, compile_answer_pattern, fill_template, last_group

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DEFAULT_INSTRUCTION = "{question}\n\n{choices}\n\nAnswer with the letter of the correct option."
DEFAULT_LETTERS_WITHOUT_CHOICES = 5
CLOZE_TEMPLATE = "Question: {question}\nAnswer:"
"""lm-eval's ARC prompt, for cloze scoring (evaluation/cloze.py); a bare "{question}\\nAnswer:" scores lower."""

# Words after which a bare "A"/"I"/lower-case letter still reads as an option, not an article/pronoun.
_CONNECTORS = r"(?:because|since|as|is|was|which|and|or|with|for|given|due|would|should|seems)\b"


_WS_RUN = re.compile(r"\s+")


def render_choices(choices: list[str]) -> str:
    """The option block shown in prompts: "A. first", "B. second", ... one per line."""
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def letters_for(sample: Sample) -> str:
    """The valid option letters of a sample: one per choice (A-E when the choices are unknown)."""
    n = len(sample.choices) if sample.choices else DEFAULT_LETTERS_WITHOUT_CHOICES
    return LETTERS[: max(1, min(n, len(LETTERS)))]


# ------------------------------------------------------------------------------------------------
# Extraction: a ranked list of signals; the first tier that finds something decides.


@functools.lru_cache(maxsize=32)
def _patterns(letters: str) -> dict[str, re.Pattern[str]]:
    up = f"[{letters}]"
    anyc = f"[{letters}{letters.lower()}]"
    # A letter token: (B) / [B] / bare B not glued to a word.
    token = rf"(?:\(\s*({anyc})\s*\)|\[\s*({anyc})\s*\]|(?<![\w'’-])({anyc})(?![\w'’-]))"
    lead = (
        r"(?i:(?:\b(?:the\s+)?(?:final\s+|correct\s+|right\s+|best\s+)?(?:answer|option|choice)"
        r"(?:\s+(?:is|would\s+be|should\s+be|must\s+be|will\s+be|=))?"
        r"|\b(?:choose|pick|select|go\s+with|going\s+with))"
        r"\s*[:=]?\s*(?:(?:option|choice|letter)\s*)?)"
    )
    # Not when the letter is rejected rather than chosen: "Option B is wrong", "option C isn't".
    chosen = r"(?!\s+(?i:(?:is|was)\s+(?:not|wrong|incorrect|false)\b|isn['’]t\b))"
    return {
        "alone": re.compile(rf"^[\s(\[*_`'\"]*({anyc})[\s)\]*_`'\".:,;!]*$"),
        "explicit": re.compile(lead + token + chosen),
        "is_correct": re.compile(
            rf"(?:\(\s*({anyc})\s*\)|\[\s*({anyc})\s*\]|(?<![\w'’-])({up})(?![\w'’-]))"
            r"\s+(?i:is\s+(?:the\s+)?(?:correct|right|best|true)\b)"
        ),
        "answer_line": re.compile(r"(?i:\b(?:answer|option|choice)\s*(?:is|:|=)\s*)([^\n]+)"),
        # A letter in brackets inside an answer line: "The answer is oxygen (D)".
        "bracketed": re.compile(rf"\(\s*({anyc})\s*\)|\[\s*({anyc})\s*\]"),
        "label_start": re.compile(
            rf"^[\s*_]*(?:\(\s*({anyc})\s*\)|\[\s*({anyc})\s*\]|({anyc})\s*[).:]|({up})(?=\s|$))"
        ),
        "marked": re.compile(rf"\(\s*({anyc})\s*\)|\[\s*({anyc})\s*\]|\*\*\s*({anyc})\s*\*\*"),
        "line_label": re.compile(rf"^[\s*_]*[(\[]?\s*({anyc})\s*[).:\]]", re.MULTILINE),
        "bare": re.compile(rf"(?<![\w.'’-])({up})(?![\w'’-])"),
    }


def _group(m: re.Match[str]) -> tuple[str, int]:
    """The letter a match captured (whichever alternative fired) and where its token ends."""
    for i in range(1, (m.re.groups or 0) + 1):
        if m.group(i) is not None:
            return m.group(i), m.end(i)
    raise AssertionError("pattern without a captured letter")


def _reads_as_option(letter: str, after: str, bracketed: bool) -> bool:
    """Whether a letter is an option and not the article "A"/"a", the pronoun "I", or a stray letter.

    Bracketed letters always count. A bare one counts when nothing word-like follows it ("B.", "B)",
    end of text), when a connector follows ("A because ..."), or when it is an upper-case letter
    other than A and I ("B Carbon dioxide").
    """
    if bracketed:
        return True
    rest = after.lstrip(" \t")
    if not rest or rest[0] in "\n).:,;!?]*\"'":
        return True
    if rest[0] in "-–—":
        return True
    if re.match(_CONNECTORS, rest, re.IGNORECASE):
        return True
    return letter.isupper() and letter not in "AI"


def _option_text_letter(text: str, choices: list[str] | None, letters: str) -> str | None:
    """The letter of the only option whose text appears in `text` (whole words, case-insensitive).

    An option whose every mention lies inside a longer option's mention ("carbon" in "carbon
    dioxide") does not count, so the longer one wins. Options of one character are ignored.
    """
    if not choices:
        return None
    low = text.lower()
    spans: dict[int, list[tuple[int, int]]] = {}
    for i, choice in enumerate(choices[: len(letters)]):
        c = re.sub(r"\s+", " ", choice.strip().lower()).rstrip(".")
        if len(c) < 2:
            continue
        pat = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in c.split(" ")) + r"(?!\w)"
        found = [(m.start(), m.end()) for m in re.finditer(pat, low)]
        if found:
            spans[i] = found
    standing = []
    for i, own in spans.items():
        others = [s for j, ss in spans.items() if j != i for s in ss]
        if any(not any(o[0] <= a and b <= o[1] and (o[1] - o[0]) > (b - a) for o in others) for a, b in own):
            standing.append(i)
    return letters[standing[0]] if len(standing) == 1 else None


def extract_choice(text: str, choices: list[str] | None, letters: str = "ABCDE") -> str | None:
    """The option letter a free-text answer chooses (upper case), or None.

    Tiers, first hit wins (within a tier the last occurrence, i.e. the final answer):
    1. the whole reply is a letter: "B", "b)", "(D)", "**C**";
    2. an explicit statement: "The answer is (B)", "Answer: c", "correct option is D", "B is correct",
       "The answer is <option text> (B)", or "The answer is <option text>"; a letter stated inside an
       option-text statement overrides its text ("The answer is C. <D's text>" is C), otherwise the
       final statement wins ("Option B is wrong ... The answer is <D's text>" is D);
    3. the reply starts with a label: "(D) because ...", "C. carbon dioxide", "B because ..."
       (skipped, like tier 6, when 3+ lines carry different labels: an echoed option list);
    4. a bracketed or bold letter anywhere: "(C)", "[C]", "**C**" (skipped when 3+ different letters
       appear, which is an echoed option list);
    5. the text of exactly one option appears ("carbon dioxide" -> B);
    6. the last standalone capital letter, except "A"/"I" used as words ("A plant needs ...").
    """
    if not text or not text.strip():
        return None
    pats = _patterns(letters)
    # Bold markers off, and every whitespace run made one character: besides simplifying the
    # patterns, this keeps their adjacent optional-whitespace parts from backtracking quadratically.
    plain = _WS_RUN.sub(
        lambda w: "\n" if "\n" in w.group(0) else " ", text.replace("**", "").replace("__", "")
    )

    m = pats["alone"].match(text.strip())
    if m:
        return m.group(1).upper()

    # Tier 2. A statement is placed where its letter, or its answer text, starts (not where its match
    # starts: the lead varies, "The correct answer is" vs "answer is"). An option-text statement
    # ("The answer is oxygen", up to the end of its line) is overridden by a letter stated inside it
    # ("The answer is C. oxygen", "The answer is oxygen (C)"); otherwise the final statement wins.
    stated: list[tuple[int, str]] = []  # (where the letter is, the letter)
    for pat_name in ("explicit", "is_correct"):
        for m in pats[pat_name].finditer(plain):
            letter, end = _group(m)
            bracketed = m.group(3) is None  # (B) or [B] rather than a bare letter
            if pat_name == "is_correct" or _reads_as_option(letter, plain[end:], bracketed):
                stated.append((end - 1, letter.upper()))
    answer_lines = list(pats["answer_line"].finditer(plain))
    for m in answer_lines:
        for b in pats["bracketed"].finditer(m.group(1)):
            letter, end = _group(b)
            stated.append((m.start(1) + end - 1, letter.upper()))
    statements = list(stated)
    for m in answer_lines:
        by_text = _option_text_letter(m.group(1), choices, letters)
        if by_text and not any(m.start() <= at < m.end() for at, _ in stated):
            statements.append((m.start(1), by_text))
    if statements:
        return max(statements, key=lambda st: st[0])[1]

    # Three or more lines labelled with different letters: the options were echoed, not answered.
    echoed = len({m.group(1).upper() for m in pats["line_label"].finditer(plain)}) >= 3
    m = None if echoed else pats["label_start"].match(plain)
    if m:
        letter, end = _group(m)
        bare = m.group(4) is not None
        if not bare or _reads_as_option(letter, plain[end:], False):
            return letter.upper()

    marked = [_group(m)[0].upper() for m in pats["marked"].finditer(text)]
    if marked and len(set(marked)) < 3:
        return marked[-1]

    by_text = _option_text_letter(plain, choices, letters)
    if by_text:
        return by_text

    for m in [] if echoed else reversed(list(pats["bare"].finditer(plain))):
        if _reads_as_option(m.group(1), plain[m.end() :], False):
            return m.group(1)
    return None


def cloze_request(sample: Sample, template: str = CLOZE_TEMPLATE) -> tuple[str, list[str]]:
    """(context, continuations): the filled template and " " + each option's text."""
    if not sample.choices:
        raise AcqsynthError(f"sample {sample.id!r}: cloze scoring needs `choices`")
    return template.format(question=sample.question), [f" {c}" for c in sample.choices]


def gold_letter(sample: Sample) -> str:
    """The reference letter of a sample: its `answer` as a letter ("B", "(b)", "B.") or an option's text."""
    letters = letters_for(sample)
    a = sample.answer.strip()
    m = re.fullmatch(r"\(?\s*([A-Za-z])\s*\)?[.:]?", a)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    if sample.choices:
        norm = a.lower().rstrip(".")
        hits = [i for i, c in enumerate(sample.choices) if c.strip().lower().rstrip(".") == norm]
        if len(hits) == 1:
            return LETTERS[hits[0]]
    raise AcqsynthError(
        f"sample {sample.id!r}: multiple-choice answer {a!r} is neither a letter in {letters} nor an option's text"
    )


# ------------------------------------------------------------------------------------------------


class MCQATask:
    """Multiple choice with lettered options; the reply should be (or contain) the letter.

    `target` is "Answer: X", preceded by the sample's reasoning when it has one and
    `with_reasoning` is on (so SFT teaches "think, then Answer: X", and the same "Answer:" cue is
    what `option_continuations` scores against).
    """

    kind = "mcqa"
    """The built-in family: what parsing, labelling and templates treat it as."""

    def __init__(
        self,
        name: str = "mcqa",
        *,
        system: str | None = None,
        instruction: str = DEFAULT_INSTRUCTION,
        answer_pattern: str | None = None,
        with_reasoning: bool = True,
    ) -> None:
        check_template(instruction, ("question", "choices"), f"task {name!r} instruction")
        self.name = name
        self.system = system
        self.instruction = instruction
        self.answer_pattern = compile_answer_pattern(answer_pattern, f"task {name!r}")
        self.with_reasoning = with_reasoning

    def _user_text(self, sample: Sample) -> str:
        return fill_template(
            self.instruction, question=sample.question, choices=render_choices(sample.choices or [])
        )

    def prompt(self, sample: Sample) -> Messages:
        """One user turn: question, the lettered options, and "Answer with the letter ..."."""
        return chat(self.system, self._user_text(sample))

    def target(self, sample: Sample) -> str:
        """`Answer: X`, after the reasoning if the sample has one (and `with_reasoning`)."""
        answer = f"Answer: {gold_letter(sample)}"
        reasoning = (sample.reasoning or "").strip()
        return f"{reasoning}\n{answer}" if reasoning and self.with_reasoning else answer

    def extract(self, text: str, sample: Sample) -> str | None:
        """The chosen letter (upper case) or None; see `extract_choice` for the ranked patterns."""
        letters = letters_for(sample)
        found = last_group(self.answer_pattern, text)
        if found is not None:
            letter = extract_choice(found, sample.choices, letters)
            if letter:
                return letter
        return extract_choice(text, sample.choices, letters)

    def grade(self, prediction: str, sample: Sample) -> Verdict:
        """`match` when the extracted letter is the reference letter."""
        got = self.extract(prediction, sample)
        if got is None:
            return Verdict(False, None, "no answer found")
        ok = got == gold_letter(sample)
        return Verdict(ok, got, "match" if ok else "mismatch")

    def option_continuations(
        self, sample: Sample, mode: Literal["letter", "text"] = "letter"
    ) -> tuple[str, list[str]]:
        """(context, continuations) for option log-likelihood scoring; the argmax option is the answer.

        mode="letter": context = the prompt's user text (question + lettered options + instruction)
        + "\\nAnswer:", continuations " A", " B", ... — single tokens, so no length bias.
        mode="text": the cloze form of lm-evaluation-harness, context "Question: <question>\\nAnswer:",
        continuations " <option text>" (see evaluation/cloze.py, which scores it with `acc` and the
        length-normalised `acc_norm`).
        Contexts are plain text, no chat template: to score a chat student, render `prompt(sample)`
        with its template and append "Answer:" (the target format) instead.
        """
        if not sample.choices:
            raise AcqsynthError(f"sample {sample.id!r}: option scoring needs `choices`")
        if mode == "letter":
            return self._user_text(sample) + "\nAnswer:", [
                f" {LETTERS[i]}" for i in range(len(sample.choices))
            ]
        if mode == "text":
            return cloze_request(sample)
        raise AcqsynthError(f"unknown option scoring mode {mode!r}; use 'letter' or 'text'")
