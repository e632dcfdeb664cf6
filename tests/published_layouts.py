"""Seeded weights written in the key layouts of published detectors (whose trained weights
are not downloadable here), and the reference outputs their own code gave for them.

`seeded_state_dict` fills every key of a published layout from one seed, in sorted key
order, scaled so activations stay moderate; the same function wrote the weights the
published code was run with (outside this repository) to record the numbers in the tests.
"""
from __future__ import annotations

import torch


def seeded_state_dict(shapes, seed):
    """{key: tensor} for {key: shape}: N(0, 1) / sqrt(fan-in) for matrices, 0.1 N(0, 1) for
    vectors, |N| + 0.5 for BatchNorm running variances, 7 for num_batches_tracked."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
            continue
        t = torch.randn(shape, generator=g)
        if key.endswith("running_var"):
            t = t.abs() + 0.5
        elif len(shape) > 1:
            t = t / shape[-1] ** 0.5
        else:
            t = 0.1 * t
        out[key] = t
    return out


def seeded_input(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def assert_matches_published(head, feats, published, label, log_softmax=False, tol=1e-5):
    """`head`'s logits on `feats` (their log-softmax with `log_softmax`) against the numbers
    recorded from the published code."""
    with torch.no_grad():
        got = head(feats, None)
    if log_softmax:
        got = torch.log_softmax(got, dim=-1)
    diff = (got - torch.tensor(published)).abs().max().item()
    print(f"{label} vs published code: max |difference| {diff:.2e}")
    assert diff < tol


def published_load_error(backend, state_dict, name):
    """The message of the CheckpointError that loading `state_dict` (a published
    layout, as if read from file `name`) into `backend` must raise."""
    import pytest

    from adf.checkpoints import CheckpointError
    from adf.checkpoints.published import load_published_backend

    with pytest.raises(CheckpointError) as err:
        load_published_backend(backend, state_dict, name)
    return str(err.value)


def sls_published_shapes(embed_dim=1024, hidden=1024, frames=201):
    """The state-dict layout of SLSforASVspoof's `Model` (without the SSL model)."""
    return {"fc0.weight": (1, embed_dim), "fc0.bias": (1,), "fc1.weight": (hidden, frames // 3 * (embed_dim // 3)),
            "fc1.bias": (hidden,), "fc3.weight": (2, hidden), "fc3.bias": (2,),
            **{f"first_bn.{p}": (1,) for p in ("weight", "bias", "running_mean", "running_var")},
            "first_bn.num_batches_tracked": ()}


def tcm_published_shapes(n_encoders=2, emb=144, heads=4, kernel=31, embed_dim=1024, ff=4, expansion=2):
    """The state-dict layout of tcm_add's `Model` (without the SSL model)."""
    shapes = {"LL.weight": (emb, embed_dim), "LL.bias": (emb,), "conformer.class_token": (1, emb),
              "conformer.positional_emb": (1, 10000, emb),
              "conformer.fc5.weight": (2, emb), "conformer.fc5.bias": (2,),
              **{f"first_bn.{p}": (1,) for p in ("weight", "bias", "running_mean", "running_var")},
              "first_bn.num_batches_tracked": ()}
    inner, dh = emb * expansion, emb // heads
    for i in range(n_encoders):
        b = f"conformer.encoder_blocks.{i}."
        for ff_name in ("ff1", "ff2"):
            shapes.update({f"{b}{ff_name}.fn.norm.weight": (emb,), f"{b}{ff_name}.fn.norm.bias": (emb,),
                           f"{b}{ff_name}.fn.fn.net.0.weight": (emb * ff, emb),
                           f"{b}{ff_name}.fn.fn.net.0.bias": (emb * ff,),
                           f"{b}{ff_name}.fn.fn.net.3.weight": (emb, emb * ff),
                           f"{b}{ff_name}.fn.fn.net.3.bias": (emb,)})
        shapes.update({
            f"{b}attn.norm.weight": (emb,), f"{b}attn.norm.bias": (emb,),
            f"{b}attn.fn.qkv.weight": (3 * emb, emb), f"{b}attn.fn.proj.weight": (emb, emb),
            f"{b}attn.fn.proj.bias": (emb,), f"{b}attn.fn.ht_proj.weight": (emb, dh),
            f"{b}attn.fn.ht_proj.bias": (emb,), f"{b}attn.fn.ht_norm.weight": (dh,),
            f"{b}attn.fn.ht_norm.bias": (dh,), f"{b}attn.fn.pos_embed": (1, heads, emb),
            f"{b}conv.net.0.weight": (emb,), f"{b}conv.net.0.bias": (emb,),
            f"{b}conv.net.2.weight": (2 * inner, emb, 1), f"{b}conv.net.2.bias": (2 * inner,),
            f"{b}conv.net.4.conv.weight": (inner, 1, kernel), f"{b}conv.net.4.conv.bias": (inner,),
            **{f"{b}conv.net.5.{p}": (inner,) for p in ("weight", "bias", "running_mean", "running_var")},
            f"{b}conv.net.5.num_batches_tracked": (),
            f"{b}conv.net.7.weight": (emb, inner, 1), f"{b}conv.net.7.bias": (emb,),
            f"{b}post_norm.weight": (emb,), f"{b}post_norm.bias": (emb,),
        })
    return shapes


def mamba_published_shapes(d=144, n_layer=2, embed_dim=1024, d_state=16, d_conv=4, expand=2):
    """The state-dict layout of XLSR-Mamba's `Model` (without the SSL model)."""
    inner, rank = expand * d, -(-d // 16)
    shapes = {"LL.weight": (d, embed_dim), "LL.bias": (d,),
              **{f"first_bn.{p}": (1,) for p in ("weight", "bias", "running_mean", "running_var")},
              "first_bn.num_batches_tracked": (), "conformer.norm_f.weight": (d,),
              "conformer.f_attention_pool.weight": (1, d), "conformer.f_attention_pool.bias": (1,),
              "conformer.b_attention_pool.weight": (1, d), "conformer.b_attention_pool.bias": (1,),
              "conformer.LL.weight": (d, 2 * d), "conformer.LL.bias": (d,),
              "conformer.classifier.weight": (2, d), "conformer.classifier.bias": (2,)}
    for side in ("forward", "backward"):
        for i in range(n_layer):
            m = f"conformer.{side}_layers.{i}.mixer."
            shapes.update({
                f"conformer.{side}_layers.{i}.norm.weight": (d,), m + "A_log": (inner, d_state),
                m + "D": (inner,), m + "in_proj.weight": (2 * inner, d), m + "conv1d.weight": (inner, 1, d_conv),
                m + "conv1d.bias": (inner,), m + "x_proj.weight": (rank + 2 * d_state, inner),
                m + "dt_proj.weight": (inner, rank), m + "dt_proj.bias": (inner,), m + "out_proj.weight": (d, inner),
            })
    return shapes
