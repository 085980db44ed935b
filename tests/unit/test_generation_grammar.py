"""The format grammar follows the template: its tags in order, the response prefix, task field rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scripted_generator import ScriptedGenerator

from acqsynth.errors import AcqsynthError
from acqsynth.generation.cache import CachedGenerator, CompletionCache, completion_key
from acqsynth.generation.grammar import format_grammar, template_tags
from acqsynth.generation.pipeline import GenerateConfig, generate_samples
from acqsynth.generation.prompts import PromptBuilder, split_roles
from acqsynth.models.generator import GenerationParams
from acqsynth.samples import Sample
from acqsynth.tasks import get_task


def rules(grammar: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in grammar.splitlines())


def test_built_in_templates_give_their_tags_in_order_after_the_prefix() -> None:
    math = rules(PromptBuilder("math").grammar())
    assert math["root"] == ('question-field "</question>" ws "<reasoning>" reasoning-field "</reasoning>" '
                            'ws "<answer>" answer-field "</answer>"')
    assert math["question-field"] == "text" and math["text"] == "[^<]+"  # no '<' until the tag is closed
    assert math["answer-field"] == '" "? "-"? [0-9] [0-9,]{0,15} ("." [0-9]{1,6})? " "?'  # a number
    code = rules(PromptBuilder("code").grammar())
    assert code["root"].endswith('ws "<tests>" tests-field "</tests>"') and code["answer-field"] == "code"
    assert code["code"] == '([^<] | "<" [^/])+'  # `a < b` is fine in code
    assert set(rules(PromptBuilder("default").grammar())) == {"root", "question-field", "reasoning-field",
                                                             "answer-field", "text", "ws"}  # only used rules


def test_multiple_choice_options_are_lettered_in_order() -> None:
    four = rules(PromptBuilder("mcqa").grammar(4))
    assert four["choices-field"] == 'nl "A." option nl "B." option nl "C." option nl "D." option nl'
    assert four["answer-field"] == '" "? [A-D] " "?'
    free = rules(PromptBuilder("mcqa").grammar())
    assert free["choices-field"].startswith('nl "A." option nl "B." option (nl "C." option')
    assert free["choices-field"].count("?") == 6 and free["answer-field"] == '" "? [A-H] " "?'


def test_a_user_template_decides_the_tags_and_their_order(tmp_path: Path) -> None:
    template = tmp_path / "t.txt"
    template.write_text("[user]\nSolve, answer first.\n[assistant]\nSure.\n[user]\nLike this:\n[assistant]\n"
                        "<answer>{answer}</answer>\n<question>{question}</question>\n[user]\nAnother.\n[assistant]\n")
    builder = PromptBuilder("default", str(template))
    assert template_tags(builder.turns) == ["answer", "question"]
    root = rules(builder.grammar())["root"]
    assert root == '"<answer>" answer-field "</answer>" ws "<question>" question-field "</question>"'


def test_templates_the_grammar_cannot_follow_are_refused() -> None:
    with pytest.raises(AcqsynthError, match="needs the template to show a tagged example answer"):
        format_grammar(split_roles("[user]\nWrite {question} {answer}\n"), "math")
    turns = split_roles(PromptBuilder("math").template)
    with pytest.raises(AcqsynthError, match=re.escape("response prefix to be empty or <question>, got 'Problem:'")):
        format_grammar(turns, "math", "Problem:")


def test_cache_keys_without_a_grammar_are_unchanged_and_differ_with_one() -> None:
    prompt = [{"role": "user", "content": "hi"}]
    plain = GenerationParams(max_new_tokens=8)
    # the key of these parameters as written before `grammar` existed (so old caches stay valid)
    assert completion_key("m", prompt, plain, 0) == "299468bea806f518dc3adb51c36bb232865c52429a54829e44f755537ba9fdd9"
    assert completion_key("m", prompt, GenerationParams(max_new_tokens=8, grammar="root ::= [a]"), 0) != \
        completion_key("m", prompt, plain, 0)


def test_a_grammar_on_a_backend_without_one_is_a_clear_error(tmp_path: Path) -> None:
    gen = CachedGenerator(ScriptedGenerator(), CompletionCache(tmp_path / "g.jsonl"))
    seeds = [Sample(id="s", question="What is 2 + 2?", answer="4", reasoning="2 + 2 = 4")]
    with pytest.raises(AcqsynthError, match="grammar-constrained decoding .* needs the llama.cpp backend"):
        generate_samples(seeds=seeds, task=get_task("math"), generator=gen, config=GenerateConfig(grammar=True),
                         output=tmp_path / "out", prompt_builder=PromptBuilder("math"))
    assert gen.inner.calls == 0
