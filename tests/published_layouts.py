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
