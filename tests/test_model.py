"""The SGN model: shapes, gradients, the folded reconstruction, ablation switches, save/reload."""

import dataclasses

import pytest
import torch

from sgnsep.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from sgnsep.config import AudioConfig, SGNConfig
from sgnsep.model import SGN, sgn_loss

SMALL = SGNConfig(num_classes=5, unet_ngf=4, embed_dim=16, depth=2, num_heads=2)


def _inputs(b=2, size=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 1, size, size, generator=g)


@pytest.mark.parametrize(
    "cfg,size",
    [
        (SMALL, 256),
        (dataclasses.replace(SMALL, depth=0, grouping=False), 256),
        (dataclasses.replace(SMALL, class_tokens=False), 256),
        (dataclasses.replace(SMALL, hard_grouping=True), 256),
        (SGNConfig(num_classes=3, unet_ngf=4, embed_dim=8, depth=1, num_heads=1, patch_size=8, unet_depth=5), 64),
    ],
)
def test_output_shapes(cfg, size):
    model = SGN(cfg, input_size=size)
    classes = torch.tensor([[0, 2, 1], [4 % cfg.num_classes, 0, 0]])
    out = model(_inputs(size=size), classes)
    assert out.mask_logits.shape == (2, 3, size, size)
    assert out.presence_logits.shape == (2, cfg.num_classes)
    assert out.embeddings.shape == (2, cfg.num_classes, cfg.embed_dim)
    assert (out.class_logits is None) == (not cfg.class_tokens)
    assert (out.assignment is None) == (not cfg.grouping)
    if cfg.grouping:
        assert out.assignment.shape == (2, (size // cfg.patch_size) ** 2, cfg.num_classes)
        assert torch.allclose(out.assignment.sum(-1), torch.ones(()))  # each patch shared out among classes


def test_masks_follow_the_requested_classes_in_any_order_and_number():
    torch.manual_seed(0)
    model = SGN(SMALL).eval()
    x = _inputs()
    full = model(x, torch.tensor([0, 1, 2, 3, 4])).mask_logits
    some = model(x, torch.tensor([3, 1])).mask_logits
    one = model(x, torch.tensor([4])).mask_logits
    assert torch.allclose(some[:, 0], full[:, 3], atol=1e-5)
    assert torch.allclose(some[:, 1], full[:, 1], atol=1e-5)
    assert torch.allclose(one[:, 0], full[:, 4], atol=1e-5)
    assert not torch.allclose(full[:, 0], full[:, 1])


def test_folded_reconstruction_equals_inner_product_with_unet_features():
    torch.manual_seed(0)
    model = SGN(SMALL).eval()
    x = _inputs()
    classes = torch.tensor([[2, 0], [1, 3]])
    out = model(x, classes)
    u = model.unet.project(model.unet.features(x))  # U: (B, D, H, T)
    g = torch.gather(out.embeddings, 1, classes.unsqueeze(-1).expand(-1, -1, SMALL.embed_dim))
    bias = model.mask_bias[classes][..., None, None]  # one bias per class (SMALL's default)
    explicit = torch.einsum("bnd,bdht->bnht", g, u) / SMALL.embed_dim ** 0.5 + bias  # eq. 10, scaled
    assert torch.allclose(out.mask_logits, explicit, atol=1e-4)


@pytest.mark.parametrize(
    "cfg",
    [SMALL, dataclasses.replace(SMALL, class_tokens=False), dataclasses.replace(SMALL, hard_grouping=True)],
)
def test_every_parameter_gets_a_gradient_from_the_total_loss(cfg):
    torch.manual_seed(0)
    model = SGN(cfg).train()
    x = _inputs()
    classes = torch.tensor([[0, 1], [2, 3]])
    out = model(x, classes)
    target = (torch.rand_like(out.mask_logits) > 0.5).float()
    present = torch.zeros(2, cfg.num_classes).scatter_(1, classes, 1.0)
    loss = sgn_loss(out, target, present, cfg)
    loss.total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"


def test_loss_terms_match_eq_7_to_9():
    torch.manual_seed(0)
    model = SGN(SMALL)
    out = model(_inputs(), torch.tensor([[0, 1], [2, 3]]))
    target = torch.zeros_like(out.mask_logits)
    present = torch.zeros(2, 5)
    loss = sgn_loss(out, target, present, dataclasses.replace(SMALL, weighted_mask_loss=False))
    assert torch.isclose(loss.total, loss.reconstruction + loss.class_token + loss.presence)
    # L_rec is a sum over the N = 2 sources of a mean BCE (eq. 8)
    per_source = torch.nn.functional.binary_cross_entropy_with_logits(out.mask_logits, target, reduction="none")
    assert torch.isclose(loss.reconstruction, per_source.mean(dim=(0, 2, 3)).sum())


def test_ablation_switches_change_the_graph():
    names = {
        key: {n for n, _ in SGN(cfg).named_parameters()}
        for key, cfg in {
            "full": SMALL,
            "no_grouping": dataclasses.replace(SMALL, grouping=False),
            "no_tokens": dataclasses.replace(SMALL, class_tokens=False),
            "depth1": dataclasses.replace(SMALL, depth=1),
        }.items()
    }
    assert any(n.startswith("grouping.") for n in names["full"])
    assert not any(n.startswith("grouping.") for n in names["no_grouping"])
    assert any(n.startswith("class_head.") for n in names["full"])
    assert not any(n.startswith("class_head.") for n in names["no_tokens"])
    assert len([n for n in names["depth1"] if n.startswith("encoder.blocks.")]) < len(
        [n for n in names["full"] if n.startswith("encoder.blocks.")]
    )
    # Without class tokens the class embeddings do not attend over the audio: they are input-independent.
    torch.manual_seed(0)
    m = SGN(dataclasses.replace(SMALL, class_tokens=False, grouping=False)).eval()
    e1 = m(_inputs(seed=1), torch.tensor([0])).embeddings
    e2 = m(_inputs(seed=2), torch.tensor([0])).embeddings
    assert torch.equal(e1, e2)
    m = SGN(SMALL).eval()
    assert not torch.equal(m(_inputs(seed=1), torch.tensor([0])).embeddings, m(_inputs(seed=2), torch.tensor([0])).embeddings)


def test_hard_grouping_assigns_each_patch_to_one_class():
    model = SGN(dataclasses.replace(SMALL, hard_grouping=True))
    for mode in (model.train(), model.eval()):
        a = mode(_inputs(), torch.tensor([0])).assignment
        assert set(a.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(a.sum(-1), torch.ones_like(a.sum(-1)))


def test_save_and_reload_give_bit_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = SGN(SMALL)
    model.train()
    model(_inputs(), torch.tensor([0]))  # move BatchNorm running statistics away from their init
    model.eval()
    meta = CheckpointMeta(classes=list("abcde"), model=SMALL, audio=AudioConfig(), name="t")
    save_checkpoint(tmp_path / "ckpt", model, meta)
    loaded = load_checkpoint(tmp_path / "ckpt")
    x, c = _inputs(seed=3), torch.tensor([[4, 1], [0, 2]])
    with torch.no_grad():
        a, b = model(x, c), loaded.model(x, c)
    assert torch.equal(a.mask_logits, b.mask_logits)
    assert torch.equal(a.presence_logits, b.presence_logits)
    assert loaded.meta.classes == list("abcde") and loaded.meta.model == SMALL
    assert len(loaded.sha256) == 64
