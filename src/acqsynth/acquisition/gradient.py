"""Exact per-sample gradient norms from one batched backward pass ("ghost norms").

For a linear layer y = x Wᵀ + b applied to the tokens of sample i, the per-sample weight gradient is
Gᵢᵀ Xᵢ (Xᵢ: [T, d_in] inputs, Gᵢ: [T, d_out] output gradients), and

    ‖Gᵢᵀ Xᵢ‖²_F = Σ_{t,s} (Xᵢ Xᵢᵀ)_{ts} (Gᵢ Gᵢᵀ)_{ts}

so the norm needs only the activations and output gradients that one backward pass over the whole
batch produces. Per layer we take the cheaper of this "ghost" form (T²·(d_in + d_out)) and the
direct per-sample product (T·d_in·d_out). Weight gradients themselves are never formed: parameters
are frozen during the pass, and only activation gradients flow.

Covered exactly:
- `nn.Linear` (weight and bias), including peft LoRA's `lora_A` / `lora_B` layers;
- `nn.Embedding`: ‖Σ_{t: x_t=v} g_t‖² summed over v, i.e. Σ_{t,s: x_t = x_s} ⟨g_t, g_s⟩ (rows equal
  to `padding_idx` get no gradient and are skipped);
- an embedding tied to a linear output layer (SmolLM2's lm_head): the two parts plus the cross term
  2⟨G_emb, G_head⟩ = 2 Σ_{t,s} ⟨g^emb_t, h_s⟩ · g^head_{s, x_t};
- any other module with its own trainable parameters (RMSNorm, LayerNorm, …): per-sample
  vector-Jacobian products of that module alone with `torch.func.vmap`, from its recorded inputs and
  output gradients (cheap: these parameters are small).
A trainable module called more than once in a forward pass, or a parameter shared other than
embedding↔linear, is refused with an error rather than approximated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from acqsynth.acquisition.base import ScoringContext
from acqsynth.acquisition.uncertainty import answer_texts
from acqsynth.errors import AcqsynthError
from acqsynth.models.causal_lm import left_pad
from acqsynth.samples import Sample


def coverage(model: nn.Module) -> dict[str, list[str]]:
    """How each module with trainable parameters is covered: method → module names."""
    plan = _plan(model)
    out: dict[str, list[str]] = {}
    for name, kind in plan.kinds.items():
        out.setdefault(kind, []).append(name)
    return out


@dataclass
class _Plan:
    kinds: dict[str, str]
    """module name → 'linear' | 'embedding' | 'tied-embedding' | 'tied-linear' | 'vmap'."""
    modules: dict[str, nn.Module]
    tied: tuple[str, str] | None
    """(embedding module name, linear module name) sharing one weight."""


def _plan(model: nn.Module) -> _Plan:
    owners: dict[int, list[tuple[str, nn.Module, str]]] = {}
    for mname, module in model.named_modules(remove_duplicate=False):
        for pname, p in module._parameters.items():
            if p is not None and p.requires_grad:
                owners.setdefault(id(p), []).append((mname, module, pname))
    if not owners:
        raise AcqsynthError("the model has no trainable parameters: nothing to take a gradient of")
    kinds: dict[str, str] = {}
    modules: dict[str, nn.Module] = {}
    tied = None
    for owner_list in owners.values():
        distinct = {id(m): (n, m, pn) for n, m, pn in owner_list}
        if len(distinct) == 2:
            (n1, m1, _), (n2, m2, _) = distinct.values()
            if isinstance(m1, nn.Linear) and isinstance(m2, nn.Embedding):
                (n1, m1), (n2, m2) = (n2, m2), (n1, m1)
            if not (isinstance(m1, nn.Embedding) and isinstance(m2, nn.Linear)) or tied is not None:
                raise AcqsynthError(
                    f"parameter shared between {n1} and {n2}: only an embedding tied to a linear layer is "
                    "supported for exact per-sample gradient norms"
                )
            tied = (n1, n2)
            kinds[n1], kinds[n2] = "tied-embedding", "tied-linear"
            modules[n1], modules[n2] = m1, m2
            continue
        if len(distinct) > 2:
            names = ", ".join(n for n, _, _ in distinct.values())
            raise AcqsynthError(f"parameter shared by more than two modules ({names}) is not supported")
        n, m, _ = owner_list[0]
        if n in kinds:
            continue
        modules[n] = m
        kinds[n] = "linear" if isinstance(m, nn.Linear) else "embedding" if isinstance(m, nn.Embedding) else "vmap"
    if tied:
        emb, lin = modules[tied[0]], modules[tied[1]]
        for pname, p in lin._parameters.items():
            if pname != "weight" and p is not None and p.requires_grad:
                raise AcqsynthError(f"tied output layer {tied[1]} has a trainable {pname}: not supported")
        if emb.weight is not lin.weight:
            raise AcqsynthError(f"{tied[0]} and {tied[1]} share a parameter other than their weight")
    return _Plan(kinds, modules, tied)


def _linear_sq(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-sample ‖gᵢᵀ xᵢ‖²_F for x [B, T, d_in], g [B, T, d_out], by the cheaper exact route."""
    t, d_in, d_out = x.shape[1], x.shape[2], g.shape[2]
    if t * (d_in + d_out) <= d_in * d_out:
        xx = torch.bmm(x, x.transpose(1, 2))
        gg = torch.bmm(g, g.transpose(1, 2))
        return (xx.double() * gg.double()).sum((1, 2))
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for i in range(x.shape[0]):  # one [d_out, d_in] matrix at a time bounds the memory
        out[i] = (g[i].T @ x[i]).double().square().sum()
    return out


def _embedding_sq(ids: torch.Tensor, g: torch.Tensor, padding_idx: int | None) -> torch.Tensor:
    """Per-sample ‖grad of an embedding table‖² = Σ_{t,s: x_t = x_s} ⟨g_t, g_s⟩ (padding rows excluded)."""
    same = ids[:, :, None] == ids[:, None, :]
    if padding_idx is not None:
        keep = ids != padding_idx
        same = same & keep[:, :, None] & keep[:, None, :]
    gg = torch.bmm(g, g.transpose(1, 2))
    return (gg.double() * same).sum((1, 2))


def _tied_cross(ids: torch.Tensor, g_emb: torch.Tensor, h: torch.Tensor, g_head: torch.Tensor,
                padding_idx: int | None) -> torch.Tensor:
    """Per-sample ⟨G_emb, G_head⟩ for a table used both as input embedding and as output layer weight.

    G_emb[v] = Σ_{t: x_t = v} g^emb_t and G_head[v] = Σ_s g^head_{s,v} h_s, so the inner product is
    Σ_{t,s} ⟨g^emb_t, h_s⟩ · g^head_{s, x_t}.
    """
    a = torch.bmm(g_emb, h.transpose(1, 2))  # [B, T, S]
    idx = ids[:, None, :].expand(-1, g_head.shape[1], -1)  # [B, S, T]
    gx = torch.gather(g_head, 2, idx).transpose(1, 2)  # [B, T, S]: g^head_{s, x_t}
    prod = a.double() * gx.double()
    if padding_idx is not None:
        prod = prod * (ids != padding_idx)[:, :, None]
    return prod.sum((1, 2))


class _Recorder:
    """Forward/backward hooks that accumulate per-sample squared gradient norms into `acc`."""

    def __init__(self, model: nn.Module, plan: _Plan, batch: int, device: torch.device) -> None:
        self.plan = plan
        self.acc = torch.zeros(batch, dtype=torch.float64, device=device)
        self.calls: dict[str, int] = {}
        self.saved: dict[str, Any] = {}
        self.handles: list[Any] = []
        self.busy = False
        get_input_embeddings = getattr(model, "get_input_embeddings", None)  # transformers and peft models
        input_emb = get_input_embeddings() if get_input_embeddings is not None else None
        for name, module in model.named_modules():
            kind = plan.kinds.get(name)
            if kind is not None or isinstance(module, nn.Embedding) or module is input_emb:
                self.handles.append(
                    module.register_forward_hook(self._make_hook(name, module, kind), with_kwargs=True)
                )

    def close(self) -> None:
        for h in self.handles:
            h.remove()

    def _make_hook(self, name: str, module: nn.Module, kind: str | None) -> Any:
        def hook(mod: nn.Module, args: tuple, kwargs: dict, out: Any) -> Any:
            if self.busy:
                return None
            if kind is not None:
                self.calls[name] = self.calls.get(name, 0) + 1
                if self.calls[name] > 1:
                    raise AcqsynthError(
                        f"trainable module {name} runs more than once per forward pass: its per-sample "
                        "gradient norm would not be exact"
                    )
            if isinstance(mod, nn.Embedding):
                # Embedding outputs become leaves that require grad, so gradients flow from here on
                # although every parameter is frozen during the pass.
                out = out.detach().requires_grad_(True)
                if kind is not None:
                    ids = args[0] if args else kwargs["input"]
                    out.register_hook(self._embedding_grad(name, mod, ids))
                return out
            if kind in ("linear", "tied-linear"):
                assert isinstance(mod, nn.Linear)  # _plan gives these kinds to nn.Linear modules only
                x = args[0] if args else kwargs["input"]
                out.register_hook(self._linear_grad(name, mod, x.detach(), kind))
            elif kind == "vmap":
                out.register_hook(self._vmap_grad(mod, args, kwargs))
            return None

        return hook

    def _linear_grad(self, name: str, mod: nn.Linear, x: torch.Tensor, kind: str) -> Any:
        def on_grad(g: torch.Tensor) -> None:
            x3 = x if x.dim() == 3 else x.reshape(x.shape[0], -1, x.shape[-1])
            g3 = g if g.dim() == 3 else g.reshape(g.shape[0], -1, g.shape[-1])
            x3, g3 = x3.float(), g3.float()
            if self._frozen(mod.weight):
                self.acc += _linear_sq(x3, g3)
            if mod.bias is not None and self._frozen(mod.bias):
                self.acc += g3.sum(1).double().square().sum(1)
            if kind == "tied-linear":
                self.saved["head"] = (x3, g3)

        return on_grad

    def _embedding_grad(self, name: str, mod: nn.Embedding, ids: torch.Tensor) -> Any:
        def on_grad(g: torch.Tensor) -> None:
            g = g.float()
            ids2 = ids.reshape(ids.shape[0], -1)
            g3 = g.reshape(g.shape[0], -1, g.shape[-1])
            self.acc += _embedding_sq(ids2, g3, mod.padding_idx)
            if self.plan.kinds.get(name) == "tied-embedding":
                h, g_head = self.saved.pop("head")
                self.acc += 2 * _tied_cross(ids2, g3, h, g_head, mod.padding_idx)

        return on_grad

    def _vmap_grad(self, mod: nn.Module, args: tuple, kwargs: dict) -> Any:
        args = tuple(a.detach() if torch.is_tensor(a) else a for a in args)
        kwargs = {k: v.detach() if torch.is_tensor(v) else v for k, v in kwargs.items()}
        batch = self.acc.shape[0]

        def on_grad(g: torch.Tensor) -> None:
            params = {n: p.detach() for n, p in mod._parameters.items() if p is not None and self._frozen(p)}
            in_dims = tuple(0 if torch.is_tensor(a) and a.dim() and a.shape[0] == batch else None for a in args)

            def one(*xs_and_g: Any) -> dict[str, torch.Tensor]:
                *xs, gi = xs_and_g
                xs = [x.unsqueeze(0) if d == 0 else x for x, d in zip(xs, in_dims, strict=True)]

                def f(p: dict[str, torch.Tensor]) -> torch.Tensor:
                    return torch.func.functional_call(mod, p, tuple(xs), kwargs)

                vjp = torch.func.vjp(f, params)[1]  # (output, vjp_fn): no has_aux
                return vjp(gi.unsqueeze(0))[0]

            self.busy = True
            try:
                grads = torch.func.vmap(one, in_dims=(*in_dims, 0))(*args, g)
            finally:
                self.busy = False
            for v in grads.values():
                self.acc += v.reshape(batch, -1).double().square().sum(1)

        return on_grad

    @staticmethod
    def _frozen(p: torch.Tensor) -> bool:
        return getattr(p, "_acq_trainable", False)


@contextlib.contextmanager
def _frozen_trainable(model: nn.Module) -> Iterator[None]:
    """Freeze the trainable parameters (marking them), so the backward pass forms no weight gradients."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p._acq_trainable = True  # type: ignore[attr-defined]
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
            del p._acq_trainable  # type: ignore[attr-defined]


def per_sample_grad_norms(
    model: nn.Module, batch: Sequence[tuple[list[int], list[int]]], pad_id: int
) -> np.ndarray:
    """‖∇_θ loss_i‖₂ over all trainable parameters θ for each (prompt ids, answer ids) pair.

    loss_i is the mean cross-entropy over sample i's answer tokens. One forward and one backward pass
    over the left-padded batch; NaN for an empty answer.
    """
    plan = _plan(model)
    was_training = model.training
    model.eval()  # dropout off: the norm is of the deterministic loss
    dev = next(model.parameters()).device
    max_cont = max(len(c) for _, c in batch)
    if max_cont == 0:
        return np.full(len(batch), np.nan)
    input_ids, mask, position_ids = left_pad([p + c for p, c in batch], pad_id)
    with _frozen_trainable(model):
        rec = _Recorder(model, plan, len(batch), dev)
        try:
            with torch.enable_grad():
                logits = model(
                    input_ids=input_ids.to(dev),
                    attention_mask=mask.to(dev),
                    position_ids=position_ids.to(dev),
                    logits_to_keep=max_cont + 1,
                ).logits[:, :-1].float()
                # Right-aligned targets and weights 1/len: Σ_b mean-loss_b in one gather (indexing
                # row by row would make every row's backward fill a batch-sized zero tensor).
                targets = torch.zeros(len(batch), max_cont, dtype=torch.long)
                weights = torch.zeros(len(batch), max_cont)
                for b, (_, c) in enumerate(batch):
                    if c:
                        targets[b, max_cont - len(c) :] = torch.tensor(c)
                        weights[b, max_cont - len(c) :] = 1.0 / len(c)
                token_lp = torch.log_softmax(logits, -1).gather(-1, targets.to(dev)[..., None])[..., 0]
                (-(token_lp * weights.to(dev)).sum()).backward()
        finally:
            rec.close()
            model.train(was_training)
    idle = [name for name in plan.kinds if rec.calls.get(name, 0) == 0]
    if idle:
        raise AcqsynthError(
            f"trainable module(s) {', '.join(idle[:3])} did not run as modules in the forward pass, so their "
            "per-sample gradients cannot be measured exactly; freeze them (requires_grad=False) to score"
        )
    norms = rec.acc.clamp(min=0).sqrt().cpu().numpy()
    norms[[not c for _, c in batch]] = np.nan
    return norms


@dataclass
class GradientNorm:
    """AcquisitionSynthesis' gradient-magnitude reward (GraNd for sequences): the L2 norm of the gradient
    of the mean answer-token loss over all trainable parameters of the student (full model or LoRA),
    per sample, for the chat [user: question, assistant: answer]. Exact, from batched passes."""

    name: ClassVar[str] = "gradient"
    answer: str = "final"
    """'final' (the sample's final answer alone, as the authors' code scores it), 'reference' (the task's
    whole target: reasoning, then the answer) or 'own' (the student's sampled answer)."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        student = ctx.need("student", self.name)
        completions = answer_texts(samples, ctx, self.answer, self.name)
        pairs = [
            (student._ids(ctx.prompt_text(s, self.name)), student._ids(c))
            for s, c in zip(samples, completions, strict=True)
        ]
        seqs, _ = student.fit(pairs)
        out = np.full(len(samples), np.nan)
        for idx in student.length_batches(seqs):
            out[idx] = per_sample_grad_norms(student.model, [seqs[i] for i in idx], student.pad_id)
        return out
