"""Which code runs an SSL detector's convolutions: one typed choice, decided in one place.

The CNN feature encoder and the positional convolution have three
implementations with the same weights and the same results (tests/
test_fast_inference.py, tests/test_batched_convs.py, tests/test_parity_hf.py):

* torchaudio's modules (the reference the others are tested against);
* adf.models.frontend: the CNN as time-major GEMMs per utterance, for CPU
  inference with the weights in the compute dtype;
* adf.models.batched_convs: the CNN (layer-norm CNNs only) and the positional
  convolution on the padded batch, without torchaudio's transposes and
  cuDNN's slow grouped kernels.

`ConvPaths` is given to SSLClassifier at construction (or with
`set_conv_paths`); `route` turns it and the call's circumstances (device,
training, autocast) into the `Route` the forward pass follows.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from adf.models.batched_convs import IMPLEMENTATIONS

CnnImpl = Literal["nhwc", "im2col"]
PosConvImpl = Literal["auto", "nhwc", "im2col"]


class Frontend(str, Enum):
    """Which implementations a detector may use."""

    AUTO = "auto"  # adf's where they apply: see `route`
    BATCHED = "batched"  # adf.models.batched_convs on every device (tests, benchmarks)
    REFERENCE = "reference"  # torchaudio's modules everywhere


@dataclass(frozen=True)
class ConvPaths:
    """The convolution implementations of a detector.

    `cnn_impl` and `pos_conv_impl` say how adf.models.batched_convs convolves
    ("nhwc" or "im2col"; for the positional convolution "auto" picks by group
    width); the defaults were chosen on an H200 (bench/README.md, GPU)."""

    frontend: Frontend = Frontend.AUTO
    cnn_impl: CnnImpl = "nhwc"
    pos_conv_impl: PosConvImpl = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "frontend", Frontend(self.frontend))  # also accepts the value's name
        if self.cnn_impl not in IMPLEMENTATIONS:
            raise ValueError(f"unknown CNN implementation {self.cnn_impl!r}; choose one of {IMPLEMENTATIONS}")
        if self.pos_conv_impl != "auto" and self.pos_conv_impl not in IMPLEMENTATIONS:
            raise ValueError(f"unknown positional convolution implementation {self.pos_conv_impl!r}; "
                             f"choose one of {IMPLEMENTATIONS} or 'auto'")


@dataclass(frozen=True)
class Route:
    """What one forward pass runs: `utterance_frontend` = adf.models.frontend;
    else `batched_cnn` = adf.models.batched_convs, else torchaudio's CNN;
    `batched_pos` = the positional convolution through adf.models.batched_convs."""

    utterance_frontend: bool
    batched_cnn: bool
    batched_pos: bool


def route(paths: ConvPaths, *, on_cpu: bool, training: bool, autocast: bool, cnn_batchable: bool) -> Route:
    """The Route of a forward pass.

    With Frontend.AUTO: CPU inference outside autocast runs the CNN through
    adf.models.frontend (it wants the weights in the compute dtype, so not
    under autocast over fp32 weights); otherwise a layer-norm CNN
    (`cnn_batchable`) runs through adf.models.batched_convs, on the CPU too (no
    transposes). The positional convolution runs as GEMMs off the CPU; on the
    CPU oneDNN's grouped convolution trained w2v_small as fast (bench/README.md).
    """
    if paths.frontend is Frontend.REFERENCE:
        return Route(False, False, False)
    if paths.frontend is Frontend.BATCHED:
        return Route(False, cnn_batchable, True)
    utterance = on_cpu and not training and not autocast
    return Route(utterance, not utterance and cnn_batchable, not on_cpu)
