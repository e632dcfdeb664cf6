"""The inference fast path (adf.models.frontend, bf16 backbone) against torchaudio's modules."""
import pytest
import torch
import torch.nn.functional as F

from adf.models.classifier import build_classifier
from adf.models.conv_paths import ConvPaths, Frontend
from tests.synth import padded_batch
from adf.models.frontend import batch_features, conv_time_major, utterance_features

LENGTHS = [16000, 11111, 4000, 400]  # down to the receptive field (one frame)


@pytest.fixture(scope="module", params=["layer_norm", "group_norm"])
def model(request):
    """Tiny models with both CNN normalisations (group_norm = w2v_small's)."""
    torch.manual_seed(0)
    m = build_classifier("tiny", extractor_mode=request.param).eval()
    with torch.no_grad():  # non-trivial norm affines and head, so their handling is tested
        for p in m.parameters():
            if p.dim() == 1:
                p.add_(0.3 * torch.randn_like(p))
    return m


def logits(model, wav, lengths, fast=True):
    model.set_conv_paths(ConvPaths(Frontend.AUTO if fast else Frontend.REFERENCE))
    try:
        with torch.inference_mode():
            return model(wav, lengths)
    finally:
        model.set_conv_paths(ConvPaths())


@pytest.mark.parametrize("kernel,stride,bias", [(3, 2, True), (2, 2, False), (10, 5, True), (4, 1, True)])
def test_conv_time_major_is_conv1d(kernel, stride, bias):
    conv = torch.nn.Conv1d(6, 5, kernel, stride=stride, bias=bias)
    x = torch.randn(37, 6)
    expected = F.conv1d(x.t()[None], conv.weight, conv.bias, stride=stride)[0].t()
    with torch.no_grad():
        assert torch.allclose(conv_time_major(x, conv), expected, atol=1e-6)


def test_utterance_features_equal_torchaudio(model):
    fe = model.backbone.feature_extractor
    for n in LENGTHS:
        wav = torch.randn(n)
        with torch.no_grad():
            expected = fe(wav[None], None)[0][0]
            got = utterance_features(fe, wav)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5)


def test_batch_features_pad_with_zeros_and_count_frames(model):
    wav, lengths = padded_batch(LENGTHS)
    with torch.no_grad():
        feats, frames = batch_features(model.backbone.feature_extractor, wav, lengths)
    # 400-sample receptive field, 320-sample hop.
    assert frames.tolist() == [(n - 400) // 320 + 1 for n in LENGTHS]
    for i, f in enumerate(frames.tolist()):
        assert feats[i, f:].abs().sum() == 0


def test_fp32_fast_path_equals_plain_path(model):
    wav, lengths = padded_batch(LENGTHS)
    assert torch.allclose(logits(model, wav, lengths), logits(model, wav, lengths, fast=False), atol=1e-5)
    one = wav[:1]
    assert torch.allclose(logits(model, one, None), logits(model, one, None, fast=False), atol=1e-5)


def test_padding_does_not_change_scores(model):
    wav, lengths = padded_batch(LENGTHS)
    batched = logits(model, wav, lengths)
    alone = torch.cat([logits(model, wav[i : i + 1, :n], None) for i, n in enumerate(LENGTHS)])
    assert torch.allclose(batched, alone, atol=1e-5)
    # Extra zero padding on the whole batch changes nothing either.
    longer = F.pad(wav, (0, 3000))
    assert torch.allclose(logits(model, longer, lengths), batched, atol=1e-5)


def test_bf16_backbone_close_to_fp32():
    torch.manual_seed(0)
    model = build_classifier("tiny").eval()
    wav, lengths = padded_batch(LENGTHS)
    ref_logits, ref_emb = model(wav, lengths, return_embedding=True)
    norms = {n: p.detach().clone() for n, p in model.named_parameters() if "layer_norm" in n}
    model.set_precision("bf16")
    for n, p in model.backbone.named_parameters(prefix="backbone"):
        assert p.dtype == (torch.float32 if n in norms else torch.bfloat16), n
    # layer norms keep their exact fp32 parameters, the head stays fp32
    assert norms and all(torch.equal(dict(model.named_parameters())[n], p) for n, p in norms.items())
    assert model.proj_fc.weight.dtype == torch.float32
    with torch.inference_mode():
        got_logits, got_emb = model(wav, lengths, return_embedding=True)
    assert got_logits.dtype == torch.float32
    assert torch.allclose(got_emb, ref_emb.detach(), atol=0.05 * ref_emb.abs().max().item())
    assert torch.allclose(got_logits, ref_logits.detach(), atol=0.05 * ref_logits.abs().max().item())


def test_norms_follow_the_weights_off_the_cpu():
    """CUDA's layer norm needs input and parameters in one dtype: off the CPU (here the
    meta device stands in for CUDA) set_precision casts the norms too, and a model
    moved off the CPU after set_precision has its fp32 norms cast on the way."""
    def norm_dtypes(model):
        return {p.dtype for n, p in model.named_parameters() if "layer_norm" in n}

    moved = build_classifier("tiny").eval().set_precision("bf16")
    assert norm_dtypes(moved) == {torch.float32}
    moved.to("meta")
    assert norm_dtypes(moved) == {torch.bfloat16} and moved.proj_fc.weight.dtype == torch.float32
    built_there = build_classifier("tiny").to("meta").set_precision("fp16")
    assert norm_dtypes(built_there) == {torch.float16}
    assert build_classifier("tiny").set_precision("bf16").float().backbone_dtype == torch.float32


def test_bad_precision_and_too_short_input():
    model = build_classifier("tiny").eval()
    with pytest.raises(ValueError, match="unknown precision"):
        model.set_precision("fp8")
    with pytest.raises(ValueError, match="shorter than the first kernel"):
        with torch.inference_mode():
            model(torch.randn(1, 5))


def test_training_mode_gives_gradients_to_the_first_conv():
    torch.manual_seed(0)
    model = build_classifier("tiny").train()
    wav, lengths = padded_batch(LENGTHS[:2])
    model(wav, lengths).sum().backward()
    assert model.backbone.feature_extractor.conv_layers[0].conv.weight.grad is not None


def test_autocast_over_fp32_weights_still_works():
    torch.manual_seed(0)
    model = build_classifier("tiny").eval()
    wav, lengths = padded_batch(LENGTHS)
    ref = logits(model, wav, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = logits(model, wav, lengths).float()
    assert torch.allclose(got, ref, atol=0.05 * ref.abs().max().item())


@pytest.mark.parametrize("seed", range(5))
def test_plan_batches_bounds_padding(seed):
    from adf.inference import plan_batches

    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(100, 2000, (int(torch.randint(1, 60, (1,), generator=g)),), generator=g).tolist()
    batches = plan_batches(lengths, batch_size=6, max_padding=0.05)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)  # longest first
    for b in batches:
        assert 1 <= len(b) <= 6
        assert 1 - sum(lengths[i] for i in b) / (len(b) * max(lengths[i] for i in b)) <= 0.05


def test_plan_batches_by_hand():
    from adf.inference import plan_batches

    # 100,99,98 pad 1.0 % ; adding 80 would pad 1 - 377/400 = 5.75 % -> new batch.
    assert plan_batches([80, 100, 99, 98, 79, 10], batch_size=4) == [[1, 2, 3], [0, 4], [5]]
    assert plan_batches([5, 5, 5, 5, 5], batch_size=2) == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("make", [lambda n: 100 * torch.randn(n) + 3.0,  # large scale and DC offset
                                  lambda n: torch.zeros(n),              # zero variance: the norm's bias
                                  lambda n: torch.sin(torch.arange(n) * 0.01)])  # slow, highly correlated
def test_first_layer_with_folded_norm_equals_torchaudio(model, make):
    """Layer 0 with its norm folded into one GEMM (group_norm) or followed by a
    layer norm equals torchaudio's block run in fp64, for inputs that stress the
    statistics (fp64: on a constant input torchaudio's own fp32 group norm is
    off by ~1e-5, its rounding noise divided by sqrt(eps))."""
    import copy

    from adf.models.frontend import _first_layer

    block = model.backbone.feature_extractor.conv_layers[0]
    wav = make(8000)
    with torch.no_grad():
        expected = copy.deepcopy(block).double()(wav.double()[None, None], None)[0][0].t().float()
        got = _first_layer(wav, block, torch.float32)
    scale = expected.abs().max().item()
    assert torch.allclose(got, expected, atol=1e-5 * max(1.0, scale)), (got - expected).abs().max()


def test_cached_kernel_taps_follow_weight_changes():
    """The fast path keeps each conv's taps between calls; changing the weights in
    place (an optimizer step, load_state_dict) or their dtype must not leave stale ones."""
    torch.manual_seed(0)
    fe = build_classifier("tiny").eval().backbone.feature_extractor
    wav = torch.randn(6000)
    with torch.no_grad():
        utterance_features(fe, wav)  # fills the cache
        for p in fe.parameters():
            p.mul_(1.5)
        assert torch.allclose(utterance_features(fe, wav), fe(wav[None], None)[0][0], atol=1e-5)
        fe.load_state_dict({k: v * 0.5 for k, v in fe.state_dict().items()})
        assert torch.allclose(utterance_features(fe, wav), fe(wav[None], None)[0][0], atol=1e-5)
        fe.to(torch.bfloat16)
        got = utterance_features(fe, wav)
        assert got.dtype == torch.bfloat16
        assert torch.allclose(got.float(), fe(wav[None].bfloat16(), None)[0][0].float(), atol=0.1)
    with torch.inference_mode():  # weights cast under inference_mode have no version counter
        fe.float()
        assert torch.allclose(utterance_features(fe, wav), fe(wav[None], None)[0][0], atol=1e-5)
