"""The format grammar follows the template: its tags in order, the response prefix, task field rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scripted_generator import ScriptedGenerator

from acqsynth.config import load_config
from acqsynth.errors import AcqsynthError
from acqsynth.generation.cache import CachedGenerator, CompletionCache, completion_key
from acqsynth.generation.grammar import format_grammar, template_tags
from acqsynth.generation.pipeline import GenerateConfig, generate_samples
from acqsynth.generation.prompts import PromptBuilder, split_roles
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.loader import check_grammar_backend
from acqsynth.run.config import RunConfig
from acqsynth.samples import Sample
from acqsynth.tasks import get_task


def rules(grammar: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in grammar.splitlines())


def test_built_in_templates_give_their_tags_in_order_after_the_prefix() -> None:
    math = rules(PromptBuilder("math").grammar())
    assert math["root"] == ('field0 "</question>" ws "<reasoning>" field1 "</reasoning>" '
                            'ws "<answer>" field2 "</answer>"')
    assert math["field0"] == math["field1"] == "text"
    assert math["text"].startswith("[\\t\\n") and math["text"].endswith("[^<]*")  # not blank, no '<'
    assert math["field2"] == '" "? number " "?'
    code = rules(PromptBuilder("code").grammar())
    assert code["root"].endswith('ws "<tests>" field3 "</tests>"')
    assert (code["field0"], code["field2"], code["field3"]) == ("text", "code", "code")  # `a < b` only in code
    assert '"<"+ [^</]' in code["code"]  # never `</` inside code
    assert set(rules(PromptBuilder("default").grammar())) == {"root", "field0", "field1", "field2", "text", "ws"}


def test_multiple_choice_options_are_lettered_in_order() -> None:
    four = rules(PromptBuilder("mcqa").grammar(4))
    assert four["field2"] == 'nl "A." option nl "B." option nl "C." option nl "D." option nl'
    assert four["field3"] == '" "? [A-D] " "?'
    free = rules(PromptBuilder("mcqa").grammar())
    assert free["root"].endswith('ws "<choices>" choices-answer')  # the letter is tied to the options written
    alternatives = free["choices-answer"].split(" | ")
    assert len(alternatives) == 7
    assert alternatives[1] == ('(nl "A." option nl "B." option nl "C." option nl "</choices>" ws "<answer>" '
                               '" "? [A-C] " "? "</answer>")')


def test_a_user_template_decides_the_tags_order_and_stop(tmp_path: Path) -> None:
    template = tmp_path / "t.txt"
    template.write_text("[user]\nSolve, answer first.\n[assistant]\nSure.\n[user]\nLike this:\n[assistant]\n"
                        "<answer>{answer}</answer>\n<question>{question}</question>\n<reasoning>r</reasoning>\n"
                        "[user]\nAnother.\n[assistant]\n")
    builder = PromptBuilder("default", str(template))
    assert template_tags(builder.turns) == ["answer", "question", "reasoning"]
    assert builder.stop == ["</reasoning>"]  # generation stops at the template's last tag
    root = rules(builder.grammar())["root"]
    assert root == ('"<answer>" field0 "</answer>" ws "<question>" field1 "</question>" ws "<reasoning>" field2 '
                    '"</reasoning>"')


def test_templates_the_grammar_cannot_follow_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AcqsynthError, match="needs the template to show a tagged example answer"):
        format_grammar(split_roles("[user]\nWrite {question} {answer}\n"), "math")
    turns = split_roles(PromptBuilder("math").template)
    with pytest.raises(AcqsynthError, match=re.escape("response prefix to be empty or <question>, got 'Problem:'")):
        format_grammar(turns, "math", "Problem:")
    no_reasoning = split_roles("[user]\nWrite.\n[assistant]\n<question>{question}</question><answer>{answer}</answer>\n")
    with pytest.raises(AcqsynthError, match="needs the template's example to show the tags <reasoning>"):
        format_grammar(no_reasoning, "math")
    mc = split_roles(PromptBuilder("mcqa").template)
    with pytest.raises(AcqsynthError, match="n_choices must be between 2 and 26"):
        format_grammar(mc, "mcqa", "<question>", n_choices=27)
    apart = split_roles("[assistant]\n<question>q</question><choices>\nA. x\n</choices><reasoning>r</reasoning>"
                        "<answer>A</answer>\n")
    with pytest.raises(AcqsynthError, match="needs <answer> right after <choices>"):
        format_grammar(apart, "mcqa")
    assert "field3" in rules(format_grammar(apart, "mcqa", n_choices=3))  # fine with a fixed number


def test_backends_without_a_grammar_are_refused_before_loading() -> None:
    check_grammar_backend("llamacpp:smollm2-135m-instruct", "--grammar")
    check_grammar_backend("models/x.GGUF", "--grammar")
    check_grammar_backend("my_gen.py:make", "--grammar")  # checked for supports_grammar when it runs
    check_grammar_backend("openai:http://127.0.0.1:1/v1@m", "--grammar")  # sent to the server
    for spec in ("smollm2-135m-instruct", "runs/grpo/generator", "hub-org/model"):
        with pytest.raises(AcqsynthError, match=f"--grammar: .* generator {re.escape(repr(spec))} is neither"):
            check_grammar_backend(spec, "--grammar")
    with pytest.raises(AcqsynthError, match="generator.grammar: grammar-constrained decoding needs the llama.cpp"):
        load_config(RunConfig, overrides=["generator.grammar=true"])  # the default generator is transformers
    assert load_config(RunConfig, overrides=["generator.grammar=true", "generator.model=llamacpp:smollm2-135m-instruct"])
    with pytest.raises(AcqsynthError, match="grammar must be GBNF text or None"):
        GenerationParams(grammar=" ")


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
