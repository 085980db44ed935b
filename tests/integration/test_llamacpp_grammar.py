"""The format grammar, checked by llama.cpp's own grammar sampler (the embedded SmolLM2 vocabulary, no
weights): every completion it lets through parses; the format mistakes it exists for cannot happen."""

from __future__ import annotations

import ctypes
import math
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.integration
llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'acqsynth[llamacpp]'")

from llama_server import smollm2_gguf  # noqa: E402

from acqsynth.generation.parsing import parse_completion  # noqa: E402
from acqsynth.generation.prompts import PromptBuilder  # noqa: E402

Q = "<question>"  # the response prefix of the built-in templates: the grammar starts after it


@pytest.fixture(scope="module")
def vocab() -> Iterator[tuple[object, object]]:
    llm = llama_cpp.Llama(str(smollm2_gguf()), vocab_only=True, verbose=False)
    yield llm, llm._model.vocab
    llm.close()


def accepts(vocab: tuple[object, object], grammar: str, text: str) -> bool:
    """Does llama.cpp's grammar sampler let `text` through token by token, then allow EOS?"""
    llm, voc = vocab
    sampler = llama_cpp.llama_sampler_init_grammar(voc, grammar.encode(), b"root")
    assert sampler, "llama.cpp rejected the grammar"

    def allowed(token: int) -> bool:
        data = (llama_cpp.llama_token_data * 1)()
        data[0].id, data[0].logit, data[0].p = token, 0.0, 0.0
        candidates = llama_cpp.llama_token_data_array(data=data, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
        return not math.isinf(data[0].logit)

    try:
        for token in llm.tokenize(text.encode(), add_bos=False, special=False):
            if not allowed(token):
                return False
            llama_cpp.llama_sampler_accept(sampler, token)
        return allowed(llama_cpp.llama_vocab_eos(voc))
    finally:
        llama_cpp.llama_sampler_free(sampler)


MATH_OK = [
    "Tom has 3 pens and buys 4. How many?</question>\n<reasoning>3 + 4 = 7</reasoning>\n<answer>7</answer>",
    "A car costs $1,200.</question><reasoning>It is 1,200.</reasoning><answer> 1,200 </answer>",
    "Half of 5?</question>\n<reasoning>5 / 2</reasoning>\n<answer>-2.5</answer>",
]
MATH_BAD = [
    "Tom has 3 pens\n<reasoning>3 + 4</reasoning>\n<answer>7</answer>",  # <question> never closed
    "Q?</question>\n<reasoning>  \t </reasoning>\n<answer>7</answer>",  # blank reasoning
    "Q?</question>\n<reasoning>r</reasoning>\n<answer>seven apples</answer>",  # not a number
    "Q?</question>\n<reasoning>r</reasoning>\n<answer>7</answer> Next problem:",  # text after the last tag
    "Q?</question>\n<reasoning>r</reasoning>\n<answer>1,,,,</answer>",
    "Q?</question>\n<reasoning>r <answer>7</answer></reasoning>\n<answer>7</answer>",  # a nested tag
]
MCQ_OK = [
    "Which organ pumps blood?</question>\n<reasoning>The heart.</reasoning>\n<choices>\nA. Lung\nB. Heart\n"
    "C. Liver\nD. Skin\n</choices>\n<answer>B</answer>",
    "Pick one</question><reasoning>x</reasoning><choices>\nA. yes\nB. no\n</choices><answer> A </answer>",
]
MCQ_BAD = [
    "Pick</question><reasoning>x</reasoning><choices>\nA. yes\nB. no\n</choices><answer>C</answer>",  # no option C
    "Pick</question><reasoning>x</reasoning><choices>\nA. yes\nC. no\n</choices><answer>A</answer>",  # skips B
    "Pick</question><reasoning>x</reasoning><choices>\nA. yes\n</choices><answer>A</answer>",  # one option
    "Pick</question><reasoning>x</reasoning><choices>\nA. yes\nB. \t\nC. z\n</choices><answer>A</answer>",  # blank
    "Pick</question><reasoning>x</reasoning><choices>\nA. y\rB. n\nB. no\n</choices><answer>A</answer>",
    "Pick</question><reasoning>x</reasoning><choices>\nA. y\x0bz\nB. no\n</choices><answer>A</answer>",
]
CODE_OK = [
    "Write f(x), True when x is below 5.</question>\n<reasoning>Compare.</reasoning>\n<answer>\ndef f(x):\n"
    "    return x < 5 and x << 1 >= 0\n</answer>\n<tests>\nassert f(1)\nassert not f(9)\n</tests>",
]
CODE_BAD = [
    "Write f.<reasoning>oops</question>\n<reasoning>r</reasoning>\n<answer>\ndef f(): pass\n</answer>\n"
    "<tests>\nassert True\n</tests>",  # a tag inside the question
    "Write f.</question>\n<reasoning>r</reasoning>\n<answer>\ndef f(): return 1 <</question>\n</answer>\n"
    "<tests>\nassert True\n</tests>",  # `</` inside code
]


@pytest.mark.parametrize(
    ("kind", "n_choices", "good", "bad"),
    [("math", None, MATH_OK, MATH_BAD), ("mcqa", None, MCQ_OK, MCQ_BAD), ("mcqa", 4, MCQ_OK[:1], MCQ_BAD),
     ("code", None, CODE_OK, CODE_BAD)],
)
def test_what_the_grammar_accepts_parses_and_format_mistakes_are_impossible(vocab, kind, n_choices, good, bad):
    builder = PromptBuilder(kind)
    grammar = builder.grammar(n_choices)
    for text in good:
        assert accepts(vocab, grammar, text), text
        full = builder.complete(text.removesuffix(builder.stop[0]), "stop")  # the stop string is cut, then re-added
        assert full == Q + text
        parsed = parse_completion(full, kind, n_choices=n_choices)
        assert parsed.sample is not None, (parsed.reason, text)
    for text in bad:
        assert not accepts(vocab, grammar, text), text
