"""Every back-end's architecture is recovered from the shapes of its weights."""
from __future__ import annotations

import pytest
import torch

from adf.models.backends.mamba import MambaBackend
from adf.models.backends.sls import SLSBackend
from adf.models.backends.tcm import TCMBackend
from adf.models.backends.vib import VIBBackend

CASES = [
    (SLSBackend, dict(embed_dim=20, hidden=8, frames=99)),
    (TCMBackend, dict(embed_dim=20, emb_size=24, heads=3, n_encoders=3, kernel_size=6, ff_mult=2,
                      conv_expansion=3, positions=40)),
    (MambaBackend, dict(embed_dim=20, d_model=12, n_layer=3, d_state=5, d_conv=3, expand=3)),
    (VIBBackend, dict(embed_dim=20, bottleneck=7)),
]


@pytest.mark.parametrize("cls,config", CASES, ids=[c.__name__ for c, _ in CASES])
def test_config_from_state_dict(cls, config):
    with torch.device("meta"):
        sd = cls(**config).state_dict()
    assert cls.config_from_state_dict(sd) == config
