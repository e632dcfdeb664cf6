"""RawNet2, the ASVspoof 2021 baseline countermeasure (Tak et al., ICASSP 2021).

The challenge's published configuration (model_config_RawNet.yaml): a fixed
sinc filterbank of 20 mel-spaced filters with 1,025 taps -> |.| -> max pool 3
-> BatchNorm + SELU -> six 1-D residual blocks (20, 20, 128, 128, 128, 128
channels; each ends in a max pool of 3) each followed by filter-wise feature
map scaling (x * s + s with s = sigmoid(Linear(mean over time of x))) ->
BatchNorm + SELU -> 3-layer GRU (1,024 units) -> the last step ->
Linear(1024, 1024) -> Linear(1024, 2) -> log-softmax. Parameter names are
the published ones (`block0.0.conv1.weight`, `fc_attention0.0.weight`,
`gru.weight_ih_l0`, ...), so its state dicts load as they are.

Logits are the published log-probabilities [spoof, bona fide] = adf's
[fake, real] (log-softmax only shifts both logits of an utterance alike:
cross-entropy and the score logit_real - logit_fake are unchanged, and
logit_real is the published score). The input is the raw 16 kHz waveform.
"""
from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from adf.models.sinc import SincFilterbank
from adf.models.waveform import WaveformDetector

RAWNET2_CONFIG = dict(first_conv=1024, filts=[20, [20, 20], [20, 128], [128, 128]],
                      gru_node=1024, nb_gru_layer=3, nb_fc_node=1024)


class ResidualBlock1d(nn.Module):
    """conv3 -> BN -> LeakyReLU(0.3) -> conv3, plus the input (1x1 conv when the
    channel count changes), then max pool 3.

    Quirk kept: blocks after the first own a pre-activation `bn1`, whose
    output the published forward pass discards (`conv1` reads the block
    input); bn1 never changes an output and is not computed here.
    """

    def __init__(self, nb_filts, first=False):
        super().__init__()
        c_in, c_out = nb_filts
        if not first:
            self.bn1 = nn.BatchNorm1d(c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size=3, padding=1)
        self.downsample = c_in != c_out
        if self.downsample:
            self.conv_downsample = nn.Conv1d(c_in, c_out, kernel_size=1)

    def forward(self, x):
        out = self.conv2(F.leaky_relu(self.bn2(self.conv1(x)), 0.3))
        out = out + (self.conv_downsample(x) if self.downsample else x)
        return F.max_pool1d(out, 3)


class RawNet2(WaveformDetector):
    """RawNet2 with the challenge's configuration (options override it)."""

    frontend_modules = ("Sinc_conv", "first_bn", *(f"block{i}" for i in range(6)),
                        *(f"fc_attention{i}" for i in range(6)))

    def __init__(self, **options):
        super().__init__()
        unknown = set(options) - set(RAWNET2_CONFIG)
        if unknown:
            raise KeyError(f"unknown RawNet2 option(s): {', '.join(sorted(unknown))}")
        cfg = {**RAWNET2_CONFIG, **options}
        self.name = "rawnet2"
        self.config = cfg
        filts = cfg["filts"]
        self.Sinc_conv = SincFilterbank(filts[0], cfg["first_conv"])
        self.first_bn = nn.BatchNorm1d(filts[0])
        widths = [filts[1], filts[1], filts[2]] + [[filts[2][1], filts[2][1]]] * 3
        for i, width in enumerate(widths):
            setattr(self, f"block{i}", nn.Sequential(ResidualBlock1d(width, first=i == 0)))
            setattr(self, f"fc_attention{i}", nn.Sequential(nn.Linear(width[1], width[1])))
        channels = widths[-1][1]
        self.bn_before_gru = nn.BatchNorm1d(channels)
        self.gru = nn.GRU(channels, cfg["gru_node"], num_layers=cfg["nb_gru_layer"], batch_first=True)
        self.fc1_gru = nn.Linear(cfg["gru_node"], cfg["nb_fc_node"])
        self.fc2_gru = nn.Linear(cfg["nb_fc_node"], 2)
        # max pool 3 after the sinc layer and after each of the six blocks
        self.min_samples = self.Sinc_conv.kernel_size - 1 + 3 ** 7

    def detect(self, wav):
        x = self.Sinc_conv(wav.unsqueeze(1))
        x = F.selu(self.first_bn(F.max_pool1d(x.abs(), 3)))
        for i in range(6):
            x = getattr(self, f"block{i}")(x)
            scale = getattr(self, f"fc_attention{i}")(x.mean(dim=-1)).sigmoid().unsqueeze(-1)
            x = x * scale + scale  # filter-wise feature map scaling (multiplicative and additive)
        x = F.selu(self.bn_before_gru(x)).transpose(1, 2)
        x, _ = self.gru(x)
        emb = self.fc1_gru(x[:, -1])
        return F.log_softmax(self.fc2_gru(emb), dim=1), emb
