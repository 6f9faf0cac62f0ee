"""What a training log records about how a model learns, besides its losses.

These numbers found why SGN trained worse than its U-Net baselines (weights.md, "How SGN is trained"): which
loss term drives which part of the network, how large the mask logits are, and whether the grouping of
eq. 5 puts its mass on the classes that sound. :func:`step_diagnostics` computes them for one training step
and returns one CSV column per value (:func:`diagnostic_columns` names them in order).

Gradient norms per loss term come from one extra ``autograd.grad`` per auxiliary term (class-token CE and
presence BCE, eq. 7, and the optional supervised grouping term), which only reaches the transformer side of
SGN and is cheap; the reconstruction
term's gradient is the total gradient minus the weighted auxiliary ones (the loss is a weighted sum, so this
is exact up to float rounding) and costs nothing extra.
"""

from __future__ import annotations

import math

import torch

# Parameter groups, by the start of the parameter's name, in the order of the log's columns. Baselines
# have only some of them (a U-Net's are all "unet", a Conditioned U-Net's control network is "film").
PARAMETER_GROUPS = (
    ("patch_embed", ("encoder.patch_embed.", "encoder.pos_embed", "encoder.input_norm.")),
    ("transformer", ("encoder.blocks.", "encoder.norm.")),
    ("class_tokens", ("encoder.class_tokens",)),
    ("class_head", ("class_head.",)),
    ("grouping_qk", ("grouping.q.", "grouping.k.")),
    ("grouping_vo", ("grouping.v.", "grouping.o.")),
    ("presence_head", ("presence_head.",)),
    ("unet", ("unet.",)),
    ("mask_head", ("mask_bias", "mask_log_temperature")),
    ("film", ("control.", "to_gamma.", "to_beta.")),
)
LOSS_TERMS = ("rec", "class_token", "presence", "assignment")
AUX_TERMS = LOSS_TERMS[1:]


def parameter_groups(model: torch.nn.Module) -> dict[str, list[tuple[str, torch.nn.Parameter]]]:
    """The model's trainable parameters by group (only groups it has), every parameter in exactly one."""
    groups: dict[str, list[tuple[str, torch.nn.Parameter]]] = {g: [] for g, _ in PARAMETER_GROUPS}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        group = next((g for g, prefixes in PARAMETER_GROUPS if name.startswith(prefixes)), None)
        if group is None:
            raise ValueError(f"parameter {name!r} belongs to no diagnostics group; add it to PARAMETER_GROUPS")
        groups[group].append((name, param))
    return {g: members for g, members in groups.items() if members}


def diagnostic_columns(model: torch.nn.Module, *, has_aux_terms: bool, has_grouping: bool) -> list[str]:
    """The CSV columns :func:`step_diagnostics` fills for ``model``, in order."""
    terms = LOSS_TERMS if has_aux_terms else ("rec",)
    cols = [f"grad_{term}_{group}" for term in terms for group in parameter_groups(model)]
    cols += ["mask_logit_mean", "mask_logit_std"]
    if has_grouping:
        cols.append("group_mass_present")
    return cols


def auxiliary_gradients(model: torch.nn.Module, loss, cfg) -> dict[str, dict[str, torch.Tensor]]:
    """Gradients of the weighted class-token and presence terms (eq. 7) and of the grouping term for each
    parameter (zeros where a term does not reach). Call before ``loss.total.backward()``: the graph is kept."""
    params = [p for _, p in model.named_parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    out = {}
    for term, value, weight in (
        ("class_token", loss.class_token, cfg.class_token_loss_weight),
        ("presence", loss.presence, cfg.presence_loss_weight),
        ("assignment", loss.assignment, cfg.assignment_loss_weight),
    ):
        if not value.requires_grad or weight == 0:
            out[term] = {n: torch.zeros_like(p) for n, p in zip(names, params)}
            continue
        grads = torch.autograd.grad(value * weight, params, retain_graph=True, allow_unused=True)
        out[term] = {n: (torch.zeros_like(p) if g is None else g) for n, p, g in zip(names, params, grads)}
    return out


def _norm(tensors: list[torch.Tensor]) -> float:
    return math.sqrt(sum(float(t.double().pow(2).sum()) for t in tensors))


def step_diagnostics(
    model: torch.nn.Module,
    out,
    present: torch.Tensor,
    aux_grads: dict[str, dict[str, torch.Tensor]] | None,
    *,
    has_grouping: bool,
) -> dict[str, float]:
    """One row of diagnostics after ``loss.total.backward()`` (the ``.grad`` of every parameter holds the
    total gradient, unscaled).

    - ``grad_<term>_<group>``: L2 norm of that loss term's gradient over that parameter group (the
      auxiliary terms weighted as in the loss); only the reconstruction term when ``aux_grads`` is None.
    - ``mask_logit_mean`` / ``mask_logit_std``: of the mask logits of the batch.
    - ``group_mass_present``: the share of the grouping's assignment (eq. 5, A (B, P, C)) that falls on the
      classes present in each mixture, averaged over the batch. Spread uniformly it would be N / C.
    """
    row: dict[str, float] = {}
    groups = parameter_groups(model)
    terms = LOSS_TERMS if aux_grads is not None else ("rec",)
    for term in terms:
        for group, members in groups.items():
            tensors = []
            for name, param in members:
                total = param.grad if param.grad is not None else torch.zeros_like(param)
                if term == "rec":
                    g = total
                    if aux_grads is not None:
                        g = total - sum(aux_grads[t][name] for t in AUX_TERMS)
                else:
                    g = aux_grads[term][name]
                tensors.append(g.detach())
            row[f"grad_{term}_{group}"] = _norm(tensors)
    logits = out.mask_logits.detach().float()
    row["mask_logit_mean"] = float(logits.mean())
    row["mask_logit_std"] = float(logits.std())
    if has_grouping:
        a = getattr(out, "assignment", None)
        row["group_mass_present"] = (
            float((a.detach().float().mean(dim=1) * present.float()).sum(dim=-1).mean()) if a is not None else math.nan
        )
    return row


__all__ = [
    "PARAMETER_GROUPS", "LOSS_TERMS", "AUX_TERMS", "parameter_groups", "diagnostic_columns", "auxiliary_gradients",
    "step_diagnostics",
]
