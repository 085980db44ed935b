"""`acqsynth score` on the real embedded student and embedder, small inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from acqsynth.acquisition import Loss, ScoringContext
from acqsynth.cli.commands import main
from acqsynth.data import load_data
from acqsynth.models.loader import load_student
from acqsynth.samples import iter_samples, read_samples, write_samples

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gsm8k_file(tmp_path_factory):
    ds = load_data("gsm8k", split="eval").select(range(4))
    return write_samples(ds, tmp_path_factory.mktemp("score") / "in.jsonl")


def test_score_adds_columns_and_a_record(gsm8k_file, tmp_path, capsys):
    out = tmp_path / "scored.parquet"
    specs = "loss(answer=reference),gradient,0.5*el2n + 0.5*random,proximity(k=4)"
    code = main(["score", "--acquisition", specs, "--input", str(gsm8k_file), "--output", str(out),
                 "--task", "math", "--reference", "gsm8k", "--batch-size", "4", "--quiet"])
    assert code == 0
    ds = read_samples(out)
    cols = ["loss(answer=reference)", "gradient", "0.5*el2n + 0.5*random", "proximity(k=4)"]
    assert all(c in ds.column_names for c in cols)
    assert all(np.isfinite(ds[c]).all() for c in cols)
    assert all(0 < v <= 1.0 + 1e-6 for v in ds["proximity(k=4)"])
    record = json.loads(out.with_name("scored.parquet.scores.json").read_text())
    assert [a["column"] for a in record["acquisitions"]] == cols and record["samples"] == 4
    assert "samples/s" in capsys.readouterr().out
    # the column equals the library function on the same samples
    student = load_student("smollm2-135m-instruct", device="cpu")
    from acqsynth.tasks import get_task

    ctx = ScoringContext(student=student, task=get_task("math"))
    np.testing.assert_allclose(ds["loss(answer=reference)"], Loss(answer="reference").score(list(iter_samples(ds)), ctx), rtol=1e-5)


def test_score_bad_input_is_named(gsm8k_file, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["score", "-a", "loss", "--input", str(empty), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "holds no samples" in capsys.readouterr().err
    assert main(["score", "-a", "los", "--input", str(gsm8k_file), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "Did you mean 'loss'" in capsys.readouterr().err
    assert main(["score", "-a", "proximity", "--input", str(gsm8k_file), "--output", str(tmp_path / "o.jsonl"),
                 "--quiet"]) == 2
    assert "needs a reference" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
