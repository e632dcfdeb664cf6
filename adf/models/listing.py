"""`adf models`: the detector architectures with their parameter counts.

Every name of the registry (adf.models.registry): the SSL backbones with the
mean back-end, the raw-waveform systems, then every backbone with every other
back-end. Models are built on the meta device (no memory, no
initialisation), so even XLS-R-2B is listed instantly; a backbone is built
once and each back-end on its own. "backbone" counts the front-end (SSL
backbone or waveform encoder + the rest of a raw-waveform system), "head"
the back-end.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def _backbone_params(backbone):
    from adf.models.classifier import build_on_meta

    return sum(p.numel() for p in build_on_meta(backbone).backbone.parameters())


def parameter_counts(name):
    """(front-end, back-end) parameter counts of detector `name`."""
    import torch

    from adf.models.backbones import backbone_config
    from adf.models.backends import build_backend
    from adf.models.classifier import build_on_meta
    from adf.models.registry import model_spec

    spec = model_spec(name)
    if spec.kind != "ssl":
        return build_on_meta(name).parameter_split()
    cfg = backbone_config(spec.backbone)
    with torch.device("meta"):
        head = build_backend(spec.backend, cfg["encoder_embed_dim"], cfg["encoder_num_layers"])
    return _backbone_params(spec.backbone), sum(p.numel() for p in head.parameters())


def table_rows():
    """One dict per registered model: name, paper name, input policy, SSL dim and
    layers (None for raw-waveform systems) and parameter counts."""
    from adf.models.backbones import backbone_config
    from adf.models.registry import model_specs

    rows = []
    for name, spec in model_specs().items():
        backbone, head = parameter_counts(name)
        cfg = backbone_config(spec.backbone) if spec.kind == "ssl" else {}
        rows.append(dict(name=name, paper=spec.paper, input=spec.input_policy,
                         dim=cfg.get("encoder_embed_dim"), layers=cfg.get("encoder_num_layers"),
                         backbone=backbone, head=head))
    return rows


def released_rows():
    """One dict per published AntiDeepfake repository (adf.checkpoints.released): repo,
    adf model name, backbone (paper name), RawBoost augmentation and parameter count."""
    from adf.checkpoints.released import released_models
    from adf.models.registry import model_spec

    return [dict(repo=m.repo, name=m.model, paper=model_spec(m.model).paper, rawboost=m.augmented,
                 params=sum(parameter_counts(m.model))) for m in released_models()]


def print_table(rows, csv, csv_header, csv_line, header, line):
    """`rows` as CSV (`csv_header`, then `csv_line(row)` each) or as a text table
    (`header`, a rule, then `line(row)` each)."""
    if csv:
        print(csv_header)
        print(*map(csv_line, rows), sep="\n")
        return 0
    print(header)
    print("-" * len(header))
    print(*map(line, rows), sep="\n")
    return 0


def print_released(csv):
    return print_table(
        released_rows(), csv, "repo,name,backbone,rawboost,params",
        lambda r: f"{r['repo']},{r['name']},{r['paper']},{str(r['rawboost']).lower()},{r['params']}",
        f"{'repository (--ckpt)':<48} {'adf name':<10} {'backbone':<10} {'RawBoost':<8} {'params':>15}",
        lambda r: (f"{r['repo']:<48} {r['name']:<10} {r['paper']:<10} {'yes' if r['rawboost'] else 'no':<8} "
                   f"{r['params']:>15,} ({r['params'] / 1e6:6.0f}M)"))


def add_arguments(parser):
    parser.add_argument("--csv", action="store_true", help="comma-separated output")
    parser.add_argument("--released", action="store_true",
                        help="list the AntiDeepfake models published on the Hugging Face Hub (use a repository "
                             "name as --ckpt)")


def run(args):
    if args.released:
        return print_released(args.csv)
    show = lambda v: "" if v is None else v  # noqa: E731
    return print_table(
        table_rows(), args.csv, "name,paper,dim,layers,backbone_params,head_params,input",
        lambda r: (f"{r['name']},{r['paper']},{show(r['dim'])},{show(r['layers'])},{r['backbone']},{r['head']},"
                   f"{r['input']}"),
        (f"{'name':<18} {'paper name':<22} {'dim':>5} {'layers':>6} {'front-end params':>24} "
         f"{'head':>9}  input"),
        lambda r: (f"{r['name']:<18} {r['paper']:<22} {show(r['dim']):>5} {show(r['layers']):>6} "
                   f"{r['backbone']:>15,} ({r['backbone'] / 1e6:6.1f}M) {r['head']:>9,}  {r['input']}"))
