"""BADGE embeddings, normalisation and combination, and scoring a Dataset."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from acqsynth.acquisition import (
    Badge,
    Combination,
    Loss,
    RandomScore,
    ScoringContext,
    column_name,
    normalize,
    parse_acquisition,
    parse_acquisitions,
)
from acqsynth.acquisition.badge import projections
from acqsynth.acquisition.scoring import answers_needed, score_dataset
from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.loader import load_student
from acqsynth.samples import Sample, to_dataset

SAMPLES = [
    Sample(id="a", question="What is 12 + 7?", answer="19"),
    Sample(id="b", question="Which gas do plants absorb?", answer="carbon dioxide"),
    Sample(id="c", question="The quick brown fox", answer="jumps over the lazy dog"),
]


@pytest.fixture(scope="module")
def student(tiny_model_dir):
    return load_student(str(tiny_model_dir), device="cpu", batch_size=2)


def naive_badge(student, question: str, answer: str, label: str = "argmax") -> np.ndarray:
    """(1/T) Σ_t (p_t − e_y) h_tᵀ for one sample (y = argmax or the answer token), token by token."""
    tok, model = student.tokenizer, student.model
    prompt = student.format_prompt([{"role": "user", "content": question}])
    p_ids, a_ids = tok(prompt, add_special_tokens=False)["input_ids"], tok(answer, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model(torch.tensor([p_ids + a_ids]), output_hidden_states=True)
    total = np.zeros((model.config.vocab_size, model.config.hidden_size))
    for t in range(len(a_ids)):
        pos = len(p_ids) - 1 + t
        p = torch.softmax(out.logits[0, pos].double(), -1).numpy()
        a = p.copy()
        a[int(np.argmax(p)) if label == "argmax" else a_ids[t]] -= 1.0
        total += np.outer(a, out.hidden_states[-1][0, pos].double().numpy())
    return total / len(a_ids)


def test_badge_equals_naive_exactly_and_sketched(student):
    ctx = ScoringContext(student=student)
    exact = Badge(answer="reference", dim_v=0, dim_h=0)
    emb, norms = exact.embed(SAMPLES, ctx), exact.score(SAMPLES, ctx)
    sketch = Badge(answer="reference", dim_v=8, dim_h=4)
    s_emb, s_norms = sketch.embed(SAMPLES, ctx), sketch.score(SAMPLES, ctx)
    cfg = student.model.config
    r_v, r_h = projections(cfg.vocab_size, cfg.hidden_size, 8, 4, ctx.seed)
    for i, s in enumerate(SAMPLES):
        g = naive_badge(student, s.question, s.answer)
        np.testing.assert_allclose(emb[i], g.flatten(), atol=1e-5)
        assert norms[i] == pytest.approx(np.linalg.norm(g), rel=1e-5)
        np.testing.assert_allclose(s_emb[i], (r_v.double().numpy().T @ g @ r_h.double().numpy()).flatten(), atol=1e-5)
        assert s_norms[i] == pytest.approx(norms[i], rel=1e-9)  # the score is exact whatever the sketch


def test_target_label_gives_the_output_layer_loss_gradient(student):
    ctx = ScoringContext(student=student)
    acq = Badge(answer="reference", dim_v=0, dim_h=0, label="target")
    emb, norms = acq.embed(SAMPLES, ctx), acq.score(SAMPLES, ctx)
    for i, s in enumerate(SAMPLES):
        g = naive_badge(student, s.question, s.answer, label="target")
        np.testing.assert_allclose(emb[i], g.flatten(), atol=1e-5)
        assert norms[i] == pytest.approx(np.linalg.norm(g), rel=1e-5)
    assert not np.allclose(emb, Badge(answer="reference", dim_v=0, dim_h=0).embed(SAMPLES, ctx))
    with pytest.raises(AcqsynthError, match="label='gold'"):
        Badge(label="gold").score(SAMPLES, ctx)


def test_badge_of_a_certain_student_is_zero():
    # if p is one-hot at the argmax, p − e_ŷ = 0: the student learns nothing from its own answer
    from acqsynth.acquisition.badge import badge_batch

    logits = torch.full((3, 5), -1e4)
    logits[:, 2] = 0
    emb, norms = badge_batch(logits, torch.randn(3, 4), [3], *projections(5, 4, 0, 0, 0))
    assert norms[0] == pytest.approx(0, abs=1e-12) and np.abs(emb).max() < 1e-12


def test_normalize():
    x = np.array([3.0, 1.0, np.nan, 2.0, np.inf])
    np.testing.assert_allclose(normalize(x, "minmax")[[0, 1, 3]], [1.0, 0.0, 0.5])
    assert np.isnan(normalize(x, "minmax")[2]) and np.isinf(normalize(x, "minmax")[4])
    z = normalize(x, "zscore")[[0, 1, 3]]
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)
    np.testing.assert_allclose(normalize(np.array([5.0, 1.0, 5.0]), "rank"), [0.75, 0.0, 0.75])
    np.testing.assert_array_equal(normalize(np.array([2.0, 2.0]), "minmax"), [0.0, 0.0])
    with pytest.raises(AcqsynthError, match="valid: none, minmax"):
        normalize(x, "softmax")


def test_parse_and_combine_equal_hand_arithmetic(student):
    combo = parse_acquisition("0.5*loss(answer=reference) + 0.25*random - 1e-1*el2n")
    assert isinstance(combo, Combination) and [w for w, _ in combo.terms] == [0.5, 0.25, -0.1]
    ctx = ScoringContext(student=student)
    got = combo.score(SAMPLES, ctx)
    parts = [normalize(a.score(SAMPLES, ctx), "minmax") for _, a in combo.terms]
    want = [0.5 * parts[0][i] + 0.25 * parts[1][i] - 0.1 * parts[2][i] for i in range(3)]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert parse_acquisition(column_name(combo)).terms == combo.terms  # the column name parses back
    names = [column_name(a) for a in parse_acquisitions("loss, badge(dim_v=4,dim_h=2), 0.5*loss + 0.5*random")]
    assert names == ["loss", "badge(dim_v=4,dim_h=2)", "0.5*loss + 0.5*random"]


def test_parse_errors_are_clear():
    with pytest.raises(AcqsynthError, match="Did you mean 'confidence'"):
        parse_acquisition("confidense")
    with pytest.raises(AcqsynthError, match="no parameter 'answr'; its parameters: answer"):
        parse_acquisition("loss(answr=own)")
    with pytest.raises(AcqsynthError, match="should be int"):
        parse_acquisition("badge(dim_v=many)")
    with pytest.raises(AcqsynthError, match="exactly one acquisition name"):
        parse_acquisition("0.5*loss*random")
    with pytest.raises(AcqsynthError, match="no acquisition given"):
        parse_acquisitions(" , ")


def test_user_function_from_a_file(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text(
        "import numpy as np\n"
        "def length(samples, ctx):\n    return np.array([len(s.question) for s in samples])\n"
    )
    acq = parse_acquisition(f"{f}:length")
    assert column_name(acq) == "length"
    np.testing.assert_array_equal(acq.score(SAMPLES, ScoringContext()), [len(s.question) for s in SAMPLES])
    with pytest.raises(AcqsynthError, match="defines no 'nope'"):
        parse_acquisition(f"{f}:nope")


def test_score_dataset_adds_columns_and_reports_nonfinite(student, tmp_path):
    f = tmp_path / "odd.py"
    f.write_text(
        "import numpy as np\n"
        "def odd(samples, ctx):\n    return np.array([np.nan if s.id == 'b' else 1.0 for s in samples])\n"
    )
    ds = to_dataset(SAMPLES).add_column("loss", [9.0, 9.0, 9.0])
    acqs = parse_acquisitions(["loss(answer=reference)", "random", f"{f}:odd", "loss"])
    ctx = ScoringContext(student=student, answer_params=GenerationParams(max_new_tokens=6, temperature=0.7))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, reports = score_dataset(ds, acqs, ctx, chunk_size=2)
    messages = [str(w.message) for w in caught]
    assert any("'odd': 1 of 3 scores are NaN" in m and "'b'" in m for m in messages)
    assert any("replacing the existing column 'loss'" in m for m in messages)
    assert out.column_names[-4:] == ["loss(answer=reference)", "random", "odd", "loss"]
    np.testing.assert_allclose(out["loss(answer=reference)"], Loss(answer="reference").score(SAMPLES, ctx))
    np.testing.assert_allclose(out["random"], RandomScore().score(SAMPLES, ctx))
    assert [r.nonfinite for r in reports] == [[], [], ["b"], []]
    assert answers_needed(acqs[3]) == 1 and answers_needed(acqs[0]) == 0


def test_sampled_answers_are_drawn_once_for_all_functions(student):
    from embedders import HashingEmbedder

    from acqsynth.acquisition.scoring import score_samples

    ctx = ScoringContext(student=student, embedder=HashingEmbedder(),
                         answer_params=GenerationParams(max_new_tokens=6, temperature=0.7))
    calls = []
    real = student.sample

    def counting(prompts, params, seed_index=None):
        calls.append((len(prompts), params.n))
        return real(prompts, params, seed_index=seed_index)

    student.sample = counting
    try:
        acqs = parse_acquisitions("confidence,answer-variance(k=4),loss,semantic-entropy(k=3),entropy")
        scores, _ = score_samples(SAMPLES, acqs, ctx)
    finally:
        del student.sample
    assert calls == [(len(SAMPLES), 4)]  # one call, as many answers as the largest k
    assert all(np.isfinite(v).all() for v in scores.values())


def test_combination_is_normalised_over_all_samples_not_per_chunk(student):
    from acqsynth.acquisition.scoring import score_samples

    ctx = ScoringContext(student=student)
    combo = parse_acquisitions("0.5*loss(answer=reference) + 0.5*random")
    one, _ = score_samples(SAMPLES, combo, ctx, chunk_size=1)
    all_, _ = score_samples(SAMPLES, combo, ctx, chunk_size=64)
    np.testing.assert_allclose(one["0.5*loss(answer=reference) + 0.5*random"], all_["0.5*loss(answer=reference) + 0.5*random"])
    parts = [normalize(a.score(SAMPLES, ctx), "minmax") for _, a in combo[0].terms]
    np.testing.assert_allclose(one["0.5*loss(answer=reference) + 0.5*random"], 0.5 * parts[0] + 0.5 * parts[1])


def test_user_dataclass_file_and_labels_in_combinations(tmp_path):
    f = tmp_path / "styled.py"
    f.write_text(
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\nfrom typing import ClassVar\nimport numpy as np\n\n"
        "@dataclass\nclass Longer:\n    name: ClassVar[str] = 'longer'\n    power: float = 1.0\n"
        "    def score(self, samples, ctx):\n        return np.array([len(s.question) ** self.power for s in samples])\n\n"
        "def hard(samples, ctx):\n    return np.ones(len(samples))\n"
    )
    acq = parse_acquisition(f"{f}:Longer(power=2)")
    assert acq.score(SAMPLES[:1], ScoringContext())[0] == len(SAMPLES[0].question) ** 2
    assert column_name(parse_acquisition(f"0.5*{f}:hard + 0.5*random")) == "0.5*hard + 0.5*random"
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(AcqsynthError, match="importing the acquisition file failed: RuntimeError: boom"):
        parse_acquisition(f"{bad}:x")


def test_scoring_refuses_duplicates_and_sample_field_names(student, tmp_path):
    from acqsynth.acquisition.scoring import score_samples

    with pytest.raises(AcqsynthError, match="'random' is requested twice"):
        score_samples(SAMPLES, parse_acquisitions("random,random"), ScoringContext())
    f = tmp_path / "clash.py"
    f.write_text("import numpy as np\ndef answer(samples, ctx):\n    return np.ones(len(samples))\n")
    with pytest.raises(AcqsynthError, match="would overwrite the sample field"):
        score_dataset(to_dataset(SAMPLES), [parse_acquisition(f"{f}:answer")], ScoringContext())
    g = tmp_path / "shape.py"
    g.write_text("import numpy as np\ndef bad(samples, ctx):\n    return np.ones(2)\n")
    with pytest.raises(AcqsynthError, match="'bad' returned shape \\(2,\\) for 3 samples"):
        score_samples(SAMPLES, [parse_acquisition(f"{g}:bad")], ScoringContext())


def test_exponents_and_subtraction_parse():
    combo = parse_acquisition("1e+3*loss - 2*least-confidence + answer-variance(k=2)")
    assert [w for w, _ in combo.terms] == [1000.0, -2.0, 1.0]
    with pytest.raises(AcqsynthError, match="subtraction with a space"):
        parse_acquisition("0.5*loss-0.5*random")


def test_own_answers_do_not_depend_on_order_or_chunk(student):
    params = GenerationParams(max_new_tokens=6, temperature=1.0)
    a = ScoringContext(student=student, answer_params=params).answers(SAMPLES, 2, by="t")
    b = ScoringContext(student=student, answer_params=params).answers(SAMPLES[::-1], 2, by="t")[::-1]
    ctx = ScoringContext(student=student, answer_params=params)
    c = [ctx.answers([s], 2, by="t")[0] for s in SAMPLES]
    assert a == b == c
