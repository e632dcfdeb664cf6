"""The model registry: every detector adf can build, by name.

A detector is a composition (front-end x back-end x input policy):

* front-end: an SSL backbone (adf.models.backbones.BACKBONES) or a
  raw-waveform encoder (the sinc-convolution front-ends of RawNet2 and AASIST);
* back-end: for SSL backbones one of adf.models.backends.BACKENDS (see that
  module for the interface), for raw-waveform encoders the published
  system's own head;
* input policy (adf.input_policy): "whole" or "first-64600".

One system has no network: `stats_trees` (kind "statistics"), clip statistics scored by
gradient-boosted trees (adf.models.statistics_trees), fitted in one pass rather than trained.

Names: `<backbone>` is the backbone with the mean-pool + linear back-end (the
AntiDeepfake models, unchanged), `<backbone>_<backend>` any other SSL
back-end, and the raw-waveform systems have their own names (`aasist`,
`aasist_l`, `rawnet2`). `build_model(name)` builds any of them; a checkpoint
records the name, the backbone configuration, the back-end options and the
input policy, so `adf.checkpoints.load_model` rebuilds exactly what was
trained and scores it the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    """What `build_model(name)` builds.

    kind "ssl": SSLClassifier(backbone, backend=backend); kinds "waveform" and
    "statistics": `builder(**options)` (a raw-waveform detector class, or the
    statistics detector). `input_policy` is the default the model is trained and
    scored with.
    """

    name: str
    paper: str
    kind: str
    input_policy: str
    backbone: str | None = None
    backend: str | None = None
    builder: object = None
    options: dict = field(default_factory=dict)


def _waveform_specs():
    from adf.models.aasist import AASIST, AASIST_CONFIGS
    from adf.models.rawnet2 import RawNet2

    specs = [ModelSpec(name, paper, "waveform", "first-64600", builder=AASIST, options=dict(config=name))
             for name, paper in (("aasist", "AASIST"), ("aasist_l", "AASIST-L")) if name in AASIST_CONFIGS]
    specs.append(ModelSpec("rawnet2", "RawNet2", "waveform", "first-64600", builder=RawNet2))
    return specs


def _statistics_specs():
    from adf.models.statistics_trees import StatisticsTrees

    return [ModelSpec("stats_trees", "Statistics + trees", "statistics", "whole", builder=StatisticsTrees)]


def model_specs():
    """{name: ModelSpec} for every model: the SSL backbones (mean back-end) first,
    then the raw-waveform systems and the statistics detector, then every backbone with
    every other back-end."""
    from adf.models.backbones import BACKBONES
    from adf.models.backends import BACKENDS, backend_names

    specs = {}
    for backbone, (paper, _, _) in BACKBONES.items():
        specs[backbone] = ModelSpec(backbone, paper, "ssl", "whole", backbone=backbone, backend="mean")
    for spec in _waveform_specs() + _statistics_specs():
        specs[spec.name] = spec
    for backend in backend_names():
        if backend == "mean":
            continue
        cls = BACKENDS[backend]
        for backbone, (paper, _, _) in BACKBONES.items():
            name = f"{backbone}_{backend}"
            specs[name] = ModelSpec(name, f"{paper} + {getattr(cls, 'paper_name', backend)}", "ssl",
                                    getattr(cls, "default_input", "whole"), backbone=backbone, backend=backend)
    return specs


def model_names():
    return list(model_specs())


def model_spec(name):
    specs = model_specs()
    if name not in specs:
        raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(specs)}")
    return specs[name]


def build_model(name, input_policy=None, backend_options=None, **kwargs):
    """A randomly initialised detector `name`, with `input_policy` (default: the model's).

    SSL models take SSLClassifier's options (freeze_cnn, activation_checkpointing,
    compile_layers, backbone overrides) and `backend_options` (the back-end's
    constructor options); raw-waveform models take their class's options.
    """
    spec = model_spec(name)
    if spec.kind == "ssl":
        from adf.models.classifier import SSLClassifier

        model = SSLClassifier(spec.backbone, backend=spec.backend, backend_options=backend_options, **kwargs)
    else:
        if backend_options:
            raise ValueError(f"model {name!r} takes no backend_options")
        model = spec.builder(**{**spec.options, **kwargs})
    model.input_policy = input_policy or spec.input_policy
    return model
