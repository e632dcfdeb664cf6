"""adf.hparams: per-model files on a base (`base:`) and the fine-tuning overrides."""
import pytest
from hyperpyyaml import load_hyperpyyaml

from adf.hparams import overrides_for, read_chain

BASE = """\
model_name: base_model
experiment: posttrain
lr: 0.1
max_batch_seconds: 100
number_of_epochs: 30
scaled: !ref <lr> * 2
nested:
    a: 1
    b: 2
finetune:
    lr: 0.01
    number_of_epochs: 3
"""


def _load(path, cli=None):
    chain = read_chain(path)
    with open(chain.root, encoding="utf-8") as fh:
        return load_hyperpyyaml(fh, overrides_for(chain, cli))


@pytest.fixture
def files(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "big.yaml").write_text("base: base.yaml\nmodel_name: big\nmax_batch_seconds: 50\n"
                                       "nested: {b: 3}\nfinetune: {lr: 0.005}\n")
    return tmp_path


def test_model_file_changes_only_its_keys_of_the_base(files):
    hp = _load(files / "big.yaml")
    assert (hp["model_name"], hp["max_batch_seconds"], hp["lr"], hp["scaled"]) == ("big", 50, 0.1, 0.2)
    assert hp["nested"] == {"a": 1, "b": 3}  # mappings merge key by key
    assert read_chain(files / "big.yaml").root == files / "base.yaml"


def test_finetune_applies_the_finetune_mapping_and_the_command_line_wins(files):
    hp = _load(files / "big.yaml", "experiment: finetune")
    # the model's finetune lr, the base's finetune epochs; references follow (scaled = 2 lr)
    assert (hp["lr"], hp["number_of_epochs"], hp["scaled"]) == (0.005, 3, 0.01)
    hp = _load(files / "big.yaml", "experiment: finetune\nlr: 0.5")
    assert (hp["lr"], hp["number_of_epochs"]) == (0.5, 3)
    assert _load(files / "base.yaml", {"experiment": "finetune"})["lr"] == 0.01
    assert _load(files / "base.yaml")["lr"] == 0.1  # post-training: the mapping is not applied


def test_mistakes_are_errors(files):
    (files / "typo.yaml").write_text("base: base.yaml\nmax_bach_seconds: 50\n")
    with pytest.raises(Exception, match="max_bach_seconds"):
        _load(files / "typo.yaml")
    (files / "lost.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        read_chain(files / "lost.yaml")
    (files / "a.yaml").write_text("base: b.yaml\n")
    (files / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match="loops"):
        read_chain(files / "a.yaml")
    with pytest.raises(ValueError, match="experiment 'fine'"):
        overrides_for(read_chain(files / "base.yaml"), "experiment: fine")


def test_paper_model_files_are_the_base_plus_their_name(tmp_path):
    """Each paper model's file resolves (before instantiation) to posttrain.yaml with its
    own model_name; only xlsr_2b's batch differs (50 s, as in the reference)."""
    import io
    import os

    import ruamel.yaml
    from hyperpyyaml.core import resolve_references

    from adf.models.backbones import MODEL_NAMES

    hparams = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "recipes", "posttrain", "hparams")
    for name in ("w2v_small", "w2v_large", "mms_300m", "mms_1b", "xlsr_1b", "xlsr_2b", "hubert_xl"):
        assert name in MODEL_NAMES
        for cli, lr in (("", 1e-7), ("experiment: finetune", 1e-6)):
            chain = read_chain(os.path.join(hparams, f"{name}.yaml"))
            assert chain.root.name == "posttrain.yaml"
            with open(chain.root, encoding="utf-8") as fh:
                text = resolve_references(fh, overrides_for(chain, cli)).getvalue()
            hp = ruamel.yaml.YAML(typ="safe").load(io.StringIO(text.replace("!", "#")))
            assert hp["model_name"] == name and hp["lr"] == lr
            assert hp["max_batch_seconds"] == (50 if name == "xlsr_2b" else 100)
            assert hp["output_folder"] == f"exp/{name}_{'finetune' if cli else 'posttrain'}"
    with pytest.raises(ValueError, match="model_name"):  # the base alone names no model
        _load(os.path.join(hparams, "posttrain.yaml"))
