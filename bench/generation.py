"""Generation speed through our Generator API, as ratios against baselines measured in this run.

Prints one JSON line at the end with:
- llama.cpp: completion tokens/s of `LlamaCppGenerator.generate` (ours) against raw
  `llama_cpp.Llama.create_chat_completion` on the same chat prompts, sampling settings and seeds
  (goal: `llamacpp_ratio` >= 0.9). The raw baseline calls `llm.reset()` before every prompt, as our
  generator does (see the docstring of `acqsynth.models.llamacpp_generator`: without the reset,
  llama-cpp-python's reused KV cache changes the sampled text), so `llamacpp_ratio` compares like
  with like and measures the wrapper's overhead. For honesty the raw baseline *without* the reset
  (prefix of the previous prompt reused, as a plain llama-cpp-python user would run it) is reported
  too, as `raw_noreset_tok_s` and `llamacpp_ratio_vs_noreset`.
- transformers: completion tokens/s of `HFGenerator` at `batch_size=--batch` against `batch_size=1`
  on the same `--batch` prompts, same params and seeds (goal: `hf_batched_speedup` >= 4), and the
  fraction of batched texts equal to the batch-1 texts (the generator seeds each row, so they should
  match; reported, not asserted).

Tokens/s is the sum of generated (completion) tokens over wall time, prompt evaluation included on
both sides. With sampling, rows end at different lengths: only tokens actually generated count
(a batch still runs until its longest row ends). Each side is timed in every repeat, alternating
the order (A,B then B,A) so that drift on a shared machine hits both alike; the tokens/s figures
are total tokens / total seconds over all repeats and the per-repeat ratios are listed too, as are
ratios on process CPU time. The 1-minute load average at start and end is reported: other work on
the machine (more runnable threads than cores) slows torch's small batch-1 steps far more than its
large batched ones (torch's OpenMP threads wait on each other), so on a busy machine
`hf_batched_speedup` is inflated unless torch runs one thread (`--torch-threads 1`).

If llama.cpp dies with SIGILL on a multi-token prompt (a GGML_NATIVE build using AMX tiles on a VM
that reports AMX but does not provide it), a child-process probe detects it and both llama.cpp
sides are loaded with `use_extra_bufts=False`; the JSON says so (`extra_buffer_types`).

Prompts: GSM8K `seed` questions, each asking for a new problem in
`<question>…</question><reasoning>…</reasoning><answer>…</answer>` form. Sampling: temperature 0.7,
top_p 1 (llama.cpp's top_k / min_p / repeat penalty switched off on both sides).

Usage: python bench/generation.py [--model ALIAS] [--prompts 6] [--max-new-tokens 128] [--repeats 2]
                                  [--batch 16] [--hf-max-new-tokens N] [--threads N]
                                  [--torch-threads N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import torch
import transformers

from acqsynth.data import load_data
from acqsynth.models.aliases import gguf_path, hf_model_path
from acqsynth.models.hf_generator import HFGenerator
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.llamacpp_generator import LlamaCppGenerator
from acqsynth.models.sampling import sample_seed
from acqsynth.samples import iter_samples

INSTRUCTION = (
    "Here is an example math word problem:\n\n{question}\n\n"
    "Write one new, different problem of the same kind, then solve it step by step. Use exactly this "
    "form: <question>the new problem</question><reasoning>the step-by-step solution</reasoning>"
    "<answer>the final number</answer>"
)


def log(msg: str) -> None:
    print(f"[generation bench] {msg}", file=sys.stderr, flush=True)


def make_prompts(n: int) -> list[list[dict[str, str]]]:
    """n chat prompts built from the first n GSM8K seed questions."""
    samples = list(iter_samples(load_data("gsm8k", split="seed")))[:n]
    if len(samples) < n:
        raise SystemExit(f"only {len(samples)} GSM8K seed questions, asked for {n}")
    return [[{"role": "user", "content": INSTRUCTION.format(question=s.question)}] for s in samples]


PROBE = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, verbose=False)
llm.create_completion(" hello hello hello hello", max_tokens=1)
"""


def extra_buffer_types_work(path) -> bool:
    """Whether llama.cpp survives a multi-token prompt with its default extra buffer types (AMX, repack).

    A llama-cpp-python built with GGML_NATIVE on a CPU that reports AMX uses AMX tiles for prompt
    evaluation; on a VM whose hypervisor does not really provide AMX this dies with SIGILL. The probe
    runs in a child process so that the bench itself survives.
    """
    r = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, timeout=300)
    if r.returncode == -signal.SIGILL:
        return False
    if r.returncode != 0:
        raise SystemExit(f"llama.cpp probe failed (exit {r.returncode}): {r.stderr.decode()[-2000:]}")
    return True


def disable_extra_buffer_types() -> None:
    """Load every later Llama with `use_extra_bufts=False` (plain CPU kernels, no AMX), raw and ours alike."""
    import llama_cpp.llama as llama_module

    default = llama_module.llama_cpp.llama_model_default_params

    def params():
        p = default()
        p.use_extra_bufts = False
        return p

    llama_module.llama_cpp.llama_model_default_params = params


def raw_llamacpp(llm, prompts, params: GenerationParams, reset: bool) -> tuple[list[str], int]:
    """The baseline: one `create_chat_completion` per prompt with the generator's settings and seeds."""
    texts, tokens = [], 0
    for i, prompt in enumerate(prompts):
        if reset:
            llm.reset()
        r = llm.create_chat_completion(
            messages=prompt,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=0,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=1.0,
            max_tokens=params.max_new_tokens,
            seed=sample_seed(params.seed, i, 0),
        )
        texts.append(r["choices"][0]["message"]["content"] or "")
        tokens += r["usage"]["completion_tokens"]
    return texts, tokens


def through_generator(gen, prompts, params: GenerationParams) -> tuple[list[str], int]:
    out = gen.generate(prompts, params)
    return [cs[0].text for cs in out], sum(c.completion_tokens for cs in out for c in cs)


def interleaved(sides: dict, repeats: int, label: str) -> dict:
    """Run every side once per repeat, order reversed on odd repeats (A,B,C then C,B,A).

    Per side: total tokens, wall seconds and process CPU seconds over all repeats, tokens/s per
    repeat, and the texts of every repeat.
    """
    out = {name: {"tokens": 0, "wall": 0.0, "cpu": 0.0, "rates": [], "texts": []} for name in sides}
    for r in range(repeats):
        for name in list(sides) if r % 2 == 0 else list(sides)[::-1]:
            w0, c0 = time.perf_counter(), time.process_time()
            texts, n = sides[name]()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            o = out[name]
            o["tokens"] += n
            o["wall"] += wall
            o["cpu"] += cpu
            o["rates"].append(n / wall)
            o["texts"].append(texts)
            log(f"{label} repeat {r + 1}/{repeats} {name}: {n} tokens in {wall:.2f} s wall "
                f"({cpu:.2f} s CPU) = {n / wall:.1f} tok/s")
    return out


def tok_s(o: dict, clock: str = "wall") -> float:
    return o["tokens"] / o[clock]


def per_repeat(a: dict, b: dict) -> list[float]:
    return [round(x / y, 3) for x, y in zip(a["rates"], b["rates"], strict=True)]


def equal_fraction(a: list[str], b: list[str]) -> float:
    return round(sum(x == y for x, y in zip(a, b, strict=True)) / len(a), 3)


def bench_llamacpp(args, figures: dict) -> None:
    import llama_cpp

    figures["llama_cpp_version"] = llama_cpp.__version__
    path = gguf_path(args.model)
    if path is None:
        raise SystemExit(f"{args.model!r} has no GGUF form")
    prompts = make_prompts(args.prompts)
    params = GenerationParams(max_new_tokens=args.max_new_tokens, temperature=0.7, top_p=1.0, n=1, seed=0)
    extra_bufts = extra_buffer_types_work(path)
    if not extra_bufts:
        log("llama.cpp dies with SIGILL on a multi-token prompt here (AMX not usable on this machine): "
            "loading both sides with use_extra_bufts=False")
        disable_extra_buffer_types()
    log(f"llama.cpp: loading {path.name} twice (raw Llama and LlamaCppGenerator)")
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_threads=args.threads, verbose=False)
    gen = LlamaCppGenerator(path, n_ctx=2048, n_threads=args.threads)
    warm = GenerationParams(max_new_tokens=8, temperature=0.7, seed=123)  # first-call allocations, untimed
    raw_llamacpp(llm, prompts[:1], warm, reset=True)
    gen.generate(prompts[:1], warm)

    def raw_noreset():
        llm.reset()  # every no-reset pass starts from the same empty cache; prompts 2.. reuse the prefix
        return raw_llamacpp(llm, prompts, params, reset=False)

    res = interleaved(
        {
            "ours": lambda: through_generator(gen, prompts, params),
            "raw_reset": lambda: raw_llamacpp(llm, prompts, params, reset=True),
            "raw_noreset": raw_noreset,
        },
        args.repeats,
        "llama.cpp",
    )
    ours, raw, noreset = res["ours"], res["raw_reset"], res["raw_noreset"]
    figures["llamacpp"] = {
        "gguf": path.name,
        "n_threads": llm.n_threads,
        "extra_buffer_types": extra_bufts,
        "prompts": args.prompts,
        "max_new_tokens": args.max_new_tokens,
        "completion_tokens_per_repeat": {name: o["tokens"] // args.repeats for name, o in res.items()},
        "ours_tok_s": round(tok_s(ours), 2),
        "raw_tok_s": round(tok_s(raw), 2),
        "llamacpp_ratio": round(tok_s(ours) / tok_s(raw), 3),
        "ratio_per_repeat": per_repeat(ours, raw),
        "llamacpp_ratio_cpu_time": round(tok_s(ours, "cpu") / tok_s(raw, "cpu"), 3),
        "raw_noreset_tok_s": round(tok_s(noreset), 2),
        "llamacpp_ratio_vs_noreset": round(tok_s(ours) / tok_s(noreset), 3),
        "ratio_vs_noreset_per_repeat": per_repeat(ours, noreset),
        "texts_equal_ours_vs_raw_reset": equal_fraction(ours["texts"][0], raw["texts"][0]),
        "texts_equal_raw_noreset_vs_raw_reset": equal_fraction(noreset["texts"][0], raw["texts"][0]),
    }
    gen.close()
    llm.close()


def bench_hf(args, figures: dict) -> None:
    prompts = make_prompts(args.batch)
    params = GenerationParams(max_new_tokens=args.hf_max_new_tokens, temperature=0.7, top_p=1.0, n=1, seed=0)
    if args.random_init:
        # real architecture and tokenizer, random weights: for machines the weights cannot reach. Rows
        # then rarely hit EOS, so both sides generate every token up to the limit.
        config = transformers.AutoConfig.from_pretrained(args.random_init)
        torch.manual_seed(0)
        dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype).to(args.device).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(args.random_init)
        log(f"transformers: {args.random_init} with random weights, {dtype}, on {args.device}")
        batched = HFGenerator((model, tokenizer), batch_size=args.batch)
    else:
        log(f"transformers: loading {args.model} (GGUF converted once to a cached checkpoint)")
        batched = HFGenerator(hf_model_path(args.model), device=args.device, batch_size=args.batch)
    single = HFGenerator((batched.model, batched.tokenizer), batch_size=1)  # the same weights in memory
    batched.generate(prompts[:2], GenerationParams(max_new_tokens=4, seed=123))  # warm-up, untimed

    # Prompt evaluation alone (one new token): the part batching cannot speed up much on a CPU, since
    # a single long prompt already fills the matrix units; it bounds the end-to-end speed-up.
    one = GenerationParams(max_new_tokens=1, temperature=0.7, seed=0)
    prefill = {}
    for name, gen in (("batch1", single), ("batched", batched)):
        t0 = time.perf_counter()
        gen.generate(prompts, one)
        prefill[name] = round(time.perf_counter() - t0, 2)

    sides = {
        "batch1": lambda: through_generator(single, prompts, params),
        "batched": lambda: through_generator(batched, prompts, params),
    }
    res = interleaved(sides, args.repeats, "transformers")
    b1, bb = res["batch1"], res["batched"]
    figures["hf"] = {
        "prompts": args.batch,
        "batch_size": args.batch,
        "max_new_tokens": args.hf_max_new_tokens,
        "torch_threads": torch.get_num_threads(),
        "device": str(batched.device) + (f" ({torch.cuda.get_device_name()})" if batched.device.type == "cuda" else ""),
        "dtype": str(batched.model.dtype),
        "weights": f"random ({args.random_init})" if args.random_init else "real",
        "completion_tokens_per_repeat": {name: o["tokens"] // args.repeats for name, o in res.items()},
        "batch1_tok_s": round(tok_s(b1), 2),
        "batched_tok_s": round(tok_s(bb), 2),
        "hf_batched_speedup": round(tok_s(bb) / tok_s(b1), 3),
        "speedup_per_repeat": per_repeat(bb, b1),
        "hf_batched_speedup_cpu_time": round(tok_s(bb, "cpu") / tok_s(b1, "cpu"), 3),
        "prompt_eval_s": prefill,
        "texts_equal_batched_vs_batch1": equal_fraction(bb["texts"][0], b1["texts"][0]),
        "repeats_identical": all(t == o["texts"][0] for o in res.values() for t in o["texts"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct", help="a causal-LM alias with a GGUF form")
    ap.add_argument("--prompts", type=int, default=6, help="prompts for the llama.cpp comparison")
    ap.add_argument("--max-new-tokens", type=int, default=128, help="max tokens per completion (llama.cpp)")
    ap.add_argument("--hf-max-new-tokens", type=int, default=None,
                    help="max new tokens per completion, transformers part (default: --max-new-tokens)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each side, order alternating")
    ap.add_argument("--batch", type=int, default=16, help="transformers batch size = its number of prompts")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: llama.cpp's own)")
    ap.add_argument("--torch-threads", type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument("--skip", choices=["llamacpp", "hf"], help="leave one part out")
    ap.add_argument("--device", default="cpu", help="transformers device (cpu, cuda)")
    ap.add_argument("--random-init", metavar="DIR",
                    help="transformers part: a model from DIR's config.json and tokenizer with random weights")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 prompts, 16 tokens, 1 repeat, batch 4")
    args = ap.parse_args()
    if args.quick:
        args.prompts, args.max_new_tokens, args.repeats, args.batch = 2, 16, 1, 4
        args.hf_max_new_tokens = 16
    if args.hf_max_new_tokens is None:
        args.hf_max_new_tokens = args.max_new_tokens
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    figures: dict = {
        "model": args.model,
        "repeats": args.repeats,
        "quick": args.quick,
        "sampling": {"temperature": 0.7, "top_p": 1.0, "seed": 0},
        "cpus": os.cpu_count(),
        "loadavg_1min_start": round(os.getloadavg()[0], 2),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }
    t0 = time.perf_counter()
    if args.skip != "llamacpp":
        bench_llamacpp(args, figures)
    if args.skip != "hf":
        bench_hf(args, figures)
    goals = {}
    if "llamacpp" in figures:
        goals["llamacpp_ratio>=0.9"] = figures["llamacpp"]["llamacpp_ratio"] >= 0.9
    if "hf" in figures:
        goals["hf_batched_speedup>=4"] = figures["hf"]["hf_batched_speedup"] >= 4
    figures["goals_met"] = goals
    figures["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    figures["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
