"""adf.models.batched_convs (the GPU path of the CNN and the positional
convolution) against torchaudio's modules, run here on the CPU."""
import copy

import pytest
import torch
from torchaudio.models.wav2vec2.components import ConvolutionalPositionalEmbedding

from adf.models import batched_convs
from adf.models.backbones import CNN_STANDARD
from adf.models.classifier import build_classifier
from adf.models.conv_paths import ConvPaths, Frontend
from tests.synth import padded_batch

LENGTHS = [16000, 11111, 4000, 400]


def perturbed(model):
    """Non-trivial norm affines and biases, so their handling is tested."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module", params=["tiny_cnn", "standard_cnn"])
def model(request):
    torch.manual_seed(0)
    overrides = {"extractor_conv_layer_config": CNN_STANDARD} if request.param == "standard_cnn" else {}
    return perturbed(build_classifier("tiny", **overrides).eval())


IMPLS = pytest.mark.parametrize("impl", batched_convs.IMPLEMENTATIONS)


@IMPLS
def test_cnn_features_equal_torchaudio_on_the_whole_padded_batch(model, impl):
    fe = model.backbone.feature_extractor
    wav, lengths = padded_batch(LENGTHS)
    with torch.no_grad():
        expected, expected_lengths = fe(wav, lengths)
        got, got_lengths = batched_convs.cnn_features(fe, wav, lengths, impl)
        assert batched_convs.cnn_features(fe, wav, None, impl)[1] is None
    assert got.shape == expected.shape
    assert torch.equal(got_lengths, expected_lengths)
    # padded frames included: the same function of the same padded input
    assert torch.allclose(got, expected, atol=1e-5)


def test_auto_picks_nhwc_for_groups_of_64_channels():
    def pick(dim, groups):
        return batched_convs.positional_impl(ConvolutionalPositionalEmbedding(dim, 128, groups))

    assert pick(1024, 16) == "nhwc"  # w2v_large, mms_300m
    assert pick(1280, 16) == pick(768, 16) == pick(1920, 16) == "im2col"  # 1B models, w2v_small, xlsr_2b


def test_cnn_support_and_short_input():
    assert not batched_convs.supports_cnn(build_classifier("tiny", extractor_mode="group_norm")
                                          .backbone.feature_extractor)
    fe = build_classifier("tiny").backbone.feature_extractor
    assert batched_convs.supports_cnn(fe)
    with pytest.raises(ValueError, match="shorter than the kernel"):
        batched_convs.cnn_features(fe, torch.randn(2, 5))
    with pytest.raises(ValueError, match="unknown convolution implementation"):
        batched_convs.cnn_features(fe, torch.randn(2, 500), impl="fft")


@pytest.mark.parametrize("impl", batched_convs.IMPLEMENTATIONS + ("auto",))
@pytest.mark.parametrize("dim,kernel,groups", [(48, 128, 16), (40, 9, 4), (32, 16, 1), (128, 16, 2)])
def test_positional_embedding_equals_torchaudio(dim, kernel, groups, impl):
    torch.manual_seed(0)
    pos = perturbed(ConvolutionalPositionalEmbedding(dim, kernel, groups))
    x = torch.randn(3, 57, dim)
    with torch.no_grad():
        expected = pos(x)
        got = batched_convs.positional_embedding(pos, x, impl)
    assert got.shape == expected.shape == x.shape
    assert torch.allclose(got, expected, atol=1e-5)


@IMPLS
def test_gradients_equal_torchaudio(model, impl):
    """Training through the batched path (recomputed im2col rows included) gives
    torchaudio's gradients for every parameter."""
    wav, lengths = padded_batch(LENGTHS[:3], seed=1)
    grads = {}
    for path in (Frontend.REFERENCE, Frontend.BATCHED):
        m = copy.deepcopy(model).train().set_conv_paths(ConvPaths(path, impl, impl))
        torch.manual_seed(3)  # the same dropout masks and layer-drop draws for both
        m(wav, lengths).sum().backward()
        grads[path] = {n: p.grad for n, p in m.named_parameters() if p.grad is not None}
    assert grads[Frontend.REFERENCE].keys() == grads[Frontend.BATCHED].keys()
    assert any("pos_conv_embed" in n for n in grads[Frontend.REFERENCE]) and any("conv_layers.0" in n for n in grads[Frontend.REFERENCE])
    # (a tolerance scaled to the largest gradient: some, like the key biases', are 0 up to rounding)
    scale = max(g.abs().max().item() for g in grads[Frontend.REFERENCE].values())
    for name, g in grads[Frontend.REFERENCE].items():
        assert torch.allclose(grads[Frontend.BATCHED][name], g, rtol=1e-4, atol=1e-6 * scale), name


@IMPLS
def test_classifier_batched_path_equals_plain_path(model, impl):
    wav, lengths = padded_batch(LENGTHS)
    out = {}
    for path in (Frontend.REFERENCE, Frontend.BATCHED):
        model.set_conv_paths(ConvPaths(path, impl, impl))
        try:
            with torch.inference_mode():
                out[path] = model(wav, lengths)
        finally:
            model.set_conv_paths(ConvPaths())
    assert torch.allclose(out[Frontend.BATCHED], out[Frontend.REFERENCE], atol=1e-5)


def test_autocast_matches_torchaudio_under_autocast():
    torch.manual_seed(0)
    model = perturbed(build_classifier("tiny").eval())
    wav, lengths = padded_batch(LENGTHS)
    out = {}
    for path in (Frontend.REFERENCE, Frontend.BATCHED):
        model.set_conv_paths(ConvPaths(path))
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            out[path] = model(wav, lengths).float()
    model.set_conv_paths(ConvPaths())
    with torch.inference_mode():
        ref = model(wav, lengths)
    scale = ref.abs().max().item()
    # both within bf16 rounding of the fp32 result (two bf16 results can differ by twice that)
    for path, got in out.items():
        assert got.dtype == torch.float32 and torch.allclose(got, ref, atol=0.05 * scale), path


def test_cached_positional_weight_follows_weight_changes():
    torch.manual_seed(0)
    pos = perturbed(ConvolutionalPositionalEmbedding(24, 8, 4)).eval()
    x = torch.randn(2, 30, 24)
    with torch.no_grad():
        batched_convs.positional_embedding(pos, x)  # fills the cache
        assert hasattr(pos.conv, "_adf_weight")
        pos.conv.parametrizations.weight.original1.mul_(1.7)  # in place: a new version
        assert torch.allclose(batched_convs.positional_embedding(pos, x), pos(x), atol=1e-5)
        other = perturbed(ConvolutionalPositionalEmbedding(24, 8, 4))
        pos.load_state_dict(other.state_dict())
        assert torch.allclose(batched_convs.positional_embedding(pos, x), other(x), atol=1e-5)
        pos.half().float()  # new storage
        assert torch.allclose(batched_convs.positional_embedding(pos, x), pos(x), atol=1e-5)
    # with gradients the weight is recomputed, so its gradient reaches the parameters
    batched_convs.positional_embedding(pos, x).sum().backward()
    assert pos.conv.parametrizations.weight.original1.grad is not None


@IMPLS
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_default_path_equals_torchaudio_modules(impl):
    """On a GPU the batched GEMMs are the default; they match cuDNN's modules
    (TF32 off for the comparison) in eval and training, and in bf16."""
    torch.manual_seed(0)
    model = perturbed(build_classifier("tiny", extractor_conv_layer_config=CNN_STANDARD)).cuda()
    wav, lengths = (t.cuda() for t in padded_batch(LENGTHS))
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        out, grads = {}, {}
        for path in (Frontend.AUTO, Frontend.REFERENCE):
            model.set_conv_paths(ConvPaths(path, impl, impl))
            with torch.inference_mode():
                out[path] = model.eval()(wav, lengths)
            model.train().zero_grad()
            torch.manual_seed(3)
            model(wav, lengths).sum().backward()
            grads[path] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        assert torch.allclose(out[Frontend.AUTO], out[Frontend.REFERENCE], atol=1e-4)
        scale = max(g.abs().max().item() for g in grads[Frontend.REFERENCE].values())
        for name, g in grads[Frontend.REFERENCE].items():
            assert torch.allclose(grads[Frontend.AUTO][name], g, rtol=1e-3, atol=1e-5 * scale), name
        model.eval().set_precision("bf16")
        for path in (Frontend.AUTO, Frontend.REFERENCE):
            model.set_conv_paths(ConvPaths(path, impl, impl))
            with torch.inference_mode():
                out[path] = model(wav, lengths)
        assert torch.allclose(out[Frontend.AUTO], out[Frontend.REFERENCE], atol=0.05 * out[Frontend.REFERENCE].abs().max().item())


@IMPLS
def test_positional_embedding_gradients(impl):
    """Input, weight (through weight norm) and bias gradients equal autograd's
    through torchaudio's module (im2col has its own backward)."""
    torch.manual_seed(0)
    pos = perturbed(ConvolutionalPositionalEmbedding(40, 16, 4))
    x = torch.randn(2, 33, 40, requires_grad=True)
    upstream = torch.randn(2, 33, 40)
    grads = []
    for fn in (pos, lambda t: batched_convs.positional_embedding(pos, t, impl)):
        pos.zero_grad()
        x.grad = None
        (fn(x) * upstream).sum().backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in pos.parameters()])
    assert len(grads[1]) == 4  # input, bias, weight norm's g and v
    for ref, got in zip(*grads):
        assert torch.allclose(got, ref, atol=1e-5 * ref.abs().max().item())


def test_conv_paths_are_checked_when_given():
    """A misspelt implementation fails at construction, not in the middle of a forward pass."""
    with pytest.raises(ValueError, match="unknown CNN implementation 'nchw'"):
        ConvPaths(cnn_impl="nchw")
    with pytest.raises(ValueError, match="'fast'"):
        ConvPaths("fast")
    assert ConvPaths("reference").frontend is Frontend.REFERENCE
    with pytest.raises(TypeError):
        build_classifier("tiny").set_conv_paths("batched")
    model = build_classifier("tiny", conv_paths=ConvPaths(Frontend.BATCHED, "im2col", "im2col"))
    assert model.conv_paths == ConvPaths(Frontend.BATCHED, "im2col", "im2col")
    with pytest.raises(AttributeError, match="set_conv_paths"):  # the old switch must not pass silently
        model.fast_frontend = False
