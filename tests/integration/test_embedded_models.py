"""The embedded models, for real: GGUF conversion under a lock, student scores, embedder, eval determinism."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from acqsynth.data.request import DataRequest
from acqsynth.evaluation.accuracy import EvalConfig
from acqsynth.evaluation.run_eval import EvalJob, run_eval
from acqsynth.models.aliases import alias_files, hf_model_path

pytestmark = pytest.mark.integration


def test_two_processes_convert_once(tmp_path):
    """Two processes asking for the same alias at once: one converts, the other waits and reuses it."""
    env = {**os.environ, "ACQSYNTH_CACHE": str(tmp_path / "cache")}
    code = "from acqsynth.models.aliases import hf_model_path; print(hf_model_path('smollm2-135m-instruct'))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    paths = {o[0].strip() for o in outs}
    assert len(paths) == 1
    assert sum("converting" in o[1] for o in outs) == 1
    converted = [p for p in (tmp_path / "cache" / "models").iterdir() if not p.name.endswith(".lock")]
    assert [p.name for p in converted] == [os.path.basename(paths.pop())]


def test_converted_checkpoint_matches_gguf_logits():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = alias_files("smollm2-135m-instruct")
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    cached = AutoModelForCausalLM.from_pretrained(hf_model_path("smollm2-135m-instruct"))
    tok = AutoTokenizer.from_pretrained(hf_model_path("smollm2-135m-instruct"))
    ids = tok("What is 12 + 7?", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(direct(**ids).logits, cached(**ids).logits)


def test_minilm_embedder_ranks_paraphrase_first():
    from acqsynth.models.embedder import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder("minilm-l6")
    x = emb.encode(["A cat sat on the mat.", "The cat was sitting on a rug.", "Stock prices fell sharply today."])
    assert x.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sims = x @ x.T
    assert sims[0, 1] > 0.5 > sims[0, 2]


def test_archive_diversity_on_real_gsm8k_questions_is_zero_only_for_duplicates():
    """12 real GSM8K questions through the embedded embedder: every one gains; repeating two of them
    gains 0 (the authors' max-distance form scored most such questions exactly 0)."""
    from acqsynth.acquisition import ArchiveDiversity, ScoringContext
    from acqsynth.data import load_data
    from acqsynth.models.embedder import SentenceTransformerEmbedder
    from acqsynth.samples import iter_samples

    questions = list(iter_samples(load_data("gsm8k", split="eval").select(range(12))))
    ctx = ScoringContext(embedder=SentenceTransformerEmbedder("minilm-l6"))
    acq = ArchiveDiversity()
    gains = acq.score(questions, ctx)
    assert gains[0] == 1.0 and (gains > acq.threshold).all(), gains.tolist()
    assert acq.score([questions[3], questions[7]], ctx).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("data", ["gsm8k", "arc-easy"])
def test_eval_is_reproducible(tmp_path, data):
    def job(out: str) -> EvalJob:
        return EvalJob(data=DataRequest(data, n=8), student="smollm2-135m-instruct", output=out,
                       eval=EvalConfig(max_new_tokens=48, seed=3))

    a = run_eval(job(str(tmp_path / "a.jsonl")))
    b = run_eval(job(str(tmp_path / "b.jsonl")))
    assert a["accuracy"] == b["accuracy"] and a["loglik_accuracy"] == b["loglik_accuracy"]
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    assert a["n"] == 8 and 0.0 <= a["accuracy"]["lo"] <= a["accuracy"]["mean"] <= a["accuracy"]["hi"] <= 1.0
    if data == "arc-easy":
        assert a["loglik_accuracy"] is not None


def test_an_alias_generator_is_named_by_its_alias_as_the_shared_student_generator_is():
    """A run whose generator is the student shares its weights (run/job.py names it hf:ALIAS); a run with
    another student loads the generator by alias. Both must give the same name, since the completion
    cache keys on it: a second student's cells then reuse the first one's generations."""
    from acqsynth.models.loader import load_generator

    gen = load_generator("smollm2-135m-instruct", batch_size=2)
    assert gen.name == "hf:smollm2-135m-instruct"
    assert str(hf_model_path("smollm2-135m-instruct")) not in gen.name
