"""`adf export --onnx`: ONNX Runtime scores equal `adf detect --precision fp32` on real audio."""
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from adf.cli import main

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EGS = os.path.join(REPO, "egs_data", "audio")
# real clips of the example corpus: 8 and 16 kHz, 1.56 to 3.0 s
CLIPS = ["valid/fr_FR_f_Armelle_griffinlim_vm-savedto.flac",
         "train/ru_RU_f_IvrvoiceRU_real_conf-enteringno.flac",
         "test/it_IT_f_Menardi_hifigan_conf-hasleft.flac",
         "train/ru_RU_f_IvrvoiceRU_world_vm-instructions.flac"]
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The real clips, plus a longer one (two of them back to back, 16 kHz, 5.1 s)."""
    paths = [os.path.join(EGS, c) for c in CLIPS]
    if not all(os.path.exists(p) for p in paths):
        pytest.skip("egs_data clips not present")
    from adf.audio import load_16k

    joined = torch.cat([load_16k(paths[1]), load_16k(paths[3])]).numpy()
    longer = tmp_path_factory.mktemp("audio") / "joined.wav"
    sf.write(longer, joined, 16000, subtype="FLOAT")
    return paths + [str(longer)]


@pytest.fixture(scope="module")
def exported(ckpt, tmp_path_factory, clips):
    """The tiny checkpoint exported by the CLI, and `adf detect --precision fp32`'s scores of the clips."""
    out = tmp_path_factory.mktemp("onnx")
    onnx_path = out / "tiny.onnx"
    assert main(["export", "--onnx", str(onnx_path), "--ckpt", ckpt]) == 0
    scores = out / "scores.csv"
    assert main(["detect", "--ckpt", ckpt, "-o", str(scores), "--precision", "fp32", "--workers", "0",
                 "--batch-size", "2", *clips]) == 0
    table = pd.read_csv(scores).set_index("path").loc[clips]
    return str(onnx_path), table


def test_onnx_runtime_equals_adf_detect(exported, clips):
    from adf.onnx_export import OnnxDetector

    path, table = exported
    detector = OnnxDetector(path)
    want = table[["logit_fake", "logit_real"]].to_numpy()
    alone = detector.score_files(clips, batch_size=1)
    batched = detector.score_files(clips, batch_size=len(clips))  # one batch padded to the 5.1 s clip
    assert np.abs(alone - want).max() < TOLERANCE
    assert np.abs(batched - want).max() < TOLERANCE
    assert np.abs(batched - alone).max() < 1e-5  # padding changes nothing
    # the clips score differently, far beyond the tolerance: the comparison can fail
    spread = (want[:, 1] - want[:, 0]).max() - (want[:, 1] - want[:, 0]).min()
    assert spread > 20 * TOLERANCE
    from adf.audio import load_16k

    _, prob = detector.score_waveforms([load_16k(p).numpy() for p in clips])
    assert np.abs(prob - table["prob_real"].to_numpy()).max() < TOLERANCE


def test_metadata_and_dynamic_axes(exported, ckpt):
    import onnx

    from adf.run_record import file_sha256

    path, _ = exported
    model = onnx.load(path)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["model"] == "tiny" and meta["input_policy"] == "whole" and meta["logits"] == "fake,real"
    assert meta["sample_rate"] == "16000" and meta["checkpoint_sha256"] == file_sha256(ckpt)
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert dims == {"waveform": ["batch", "samples"], "lengths": ["batch"]}


def test_group_norm_cnn_pads_exactly_and_external_weights(tmp_path, clips):
    """w2v_small's CNN normalises its first layer over time: the graph takes the statistics
    over each row's valid frames (a test-sized w2v_small), and weights can live beside it."""
    from adf.audio import load_16k
    from adf.models.classifier import build_classifier
    from adf.onnx_export import OnnxDetector, export_onnx, reference_logits

    torch.manual_seed(1)
    model = build_classifier("w2v_small", extractor_conv_layer_config=[(32, 10, 5)] + [(32, 3, 2)] * 4
                             + [(32, 2, 2)] * 2, encoder_embed_dim=64, encoder_num_layers=2,
                             encoder_num_heads=4, encoder_ff_interm_features=128, encoder_pos_conv_kernel=16,
                             encoder_pos_conv_groups=4).eval()
    path = tmp_path / "w2v.onnx"
    export_onnx(model, path, external_data=True)
    assert (tmp_path / "w2v.onnx.data").exists()
    wavs = [load_16k(p) for p in clips]
    logits, _ = OnnxDetector(path).score_waveforms([w.numpy() for w in wavs])
    assert np.abs(logits - reference_logits(model, wavs)).max() < TOLERANCE
    assert sorted(os.listdir(tmp_path)) == ["w2v.onnx", "w2v.onnx.data"]  # no temporary files left


def test_raw_waveform_system_exports_with_its_fixed_input(tmp_path, clips):
    """AASIST-L: the first 64,600 samples, tiled when shorter, happen inside the graph."""
    from adf.audio import load_16k
    from adf.checkpoints import save_checkpoint
    from adf.models.classifier import build_classifier
    from adf.onnx_export import OnnxDetector, reference_logits

    torch.manual_seed(0)
    ckpt = tmp_path / "aasist_l.ckpt"
    save_checkpoint(build_classifier("aasist_l"), ckpt)
    path = tmp_path / "aasist_l.onnx"
    assert main(["export", "--onnx", str(path), "--ckpt", str(ckpt)]) == 0
    from adf.checkpoints import load_model

    wavs = [load_16k(p) for p in clips]  # all shorter than 64,600 samples but the 5.1 s one
    logits, _ = OnnxDetector(path).score_waveforms([w.numpy() for w in wavs])
    assert np.abs(logits - reference_logits(load_model(str(ckpt)), wavs)).max() < TOLERANCE
    # ... and a whole-utterance policy would need padding it cannot mask: one clear error
    assert main(["export", "--onnx", str(tmp_path / "x.onnx"), "--ckpt", str(ckpt), "--input", "whole"]) == 2
    assert not (tmp_path / "x.onnx").exists()


def test_bad_inputs_give_one_error(tmp_path, ckpt, capsys):
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    assert main(["export", "--onnx", str(tmp_path / "a.onnx"), "--ckpt", str(broken)]) == 2
    assert main(["export", "--onnx", str(tmp_path / "a.onnx"), "--ckpt", str(tmp_path / "none.ckpt")]) == 2
    assert main(["export", "--onnx", str(tmp_path / "a.onnx"), "--ckpt", ckpt, "--input", "half"]) == 2
    err = capsys.readouterr().err
    assert "broken.ckpt" in err and "none.ckpt" in err and "half" in err
    assert not (tmp_path / "a.onnx").exists()
