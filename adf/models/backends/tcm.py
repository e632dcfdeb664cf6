"""Conformer + TCM back-end (XLSR-Conformer + TCM: Truong et al., Interspeech 2024).

The last SSL layer is projected to `emb_size` (Linear), normalised by
BatchNorm2d(1) over the whole [T, emb] map and SELU-activated, a fixed
sinusoidal position table is added, a learnt class token is put in front,
and `n_encoders` Conformer blocks follow; the class token's output feeds
Linear(emb, 2).

Each block: x + FF/2, x + TCM attention, x + convolution module, x + FF/2,
layer norm (macaron Conformer; FF = LN, Linear(emb, 4 emb), Swish,
Linear(4 emb, emb); convolution = LN, pointwise conv to 2 x 2 emb, GLU,
depthwise conv (kernel `kernel_size`, 'same' padding, one more zero on the
left than on the right for an even kernel), BatchNorm1d, Swish, pointwise conv
back). Temporal-channel modelling (TCM) attention: per head, the channels of
that head averaged over all tokens are projected (Linear(emb/heads, emb)),
layer-normed per head slice, GELU-activated and given a learnt position; these
`heads` head tokens join the sequence for one multi-head self-attention
(no qkv bias), then leave it: the class token's output gains the mean of the
head tokens' and of the frames' outputs.

Padding: the published code ignores masks (its inputs are all 201 frames).
Here padded frames are left out of every mean, of the attention's keys and of
what the depthwise convolution sees (zeros, as past the end of an unpadded
utterance), so a batch scores as its utterances alone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adf.models.backends import Backend, register_backend
from adf.models.backends.masking import masked_mean, masked_softmax, zero_padding

# published checkpoint (tcm_add, `Model`) -> this module's parameter names
_BLOCK = r"conformer\.encoder_blocks\.(\d+)\."
PUBLISHED_KEYS = [
    (r"LL\.(\w+)", r"proj.\1"),
    (r"first_bn\.(\w+)", r"norm.\1"),
    (r"conformer\.positional_emb", "positional"),
    (r"conformer\.class_token", "class_token"),
    (r"conformer\.fc5\.(\w+)", r"out.\1"),
    (_BLOCK + r"(ff[12])\.fn\.norm\.(\w+)", r"blocks.\1.\2.norm.\3"),
    (_BLOCK + r"(ff[12])\.fn\.fn\.net\.0\.(\w+)", r"blocks.\1.\2.up.\3"),
    (_BLOCK + r"(ff[12])\.fn\.fn\.net\.3\.(\w+)", r"blocks.\1.\2.down.\3"),
    (_BLOCK + r"attn\.norm\.(\w+)", r"blocks.\1.attn_norm.\2"),
    (_BLOCK + r"attn\.fn\.(qkv|proj)\.(\w+)", r"blocks.\1.attn.\2.\3"),
    (_BLOCK + r"attn\.fn\.ht_proj\.(\w+)", r"blocks.\1.attn.head_proj.\2"),
    (_BLOCK + r"attn\.fn\.ht_norm\.(\w+)", r"blocks.\1.attn.head_norm.\2"),
    (_BLOCK + r"attn\.fn\.pos_embed", r"blocks.\1.attn.head_pos"),
    (_BLOCK + r"conv\.net\.0\.(\w+)", r"blocks.\1.conv.norm.\2"),
    (_BLOCK + r"conv\.net\.2\.(\w+)", r"blocks.\1.conv.pointwise_in.\2"),
    (_BLOCK + r"conv\.net\.4\.conv\.(\w+)", r"blocks.\1.conv.depthwise.\2"),
    (_BLOCK + r"conv\.net\.5\.(\w+)", r"blocks.\1.conv.batch_norm.\2"),
    (_BLOCK + r"conv\.net\.7\.(\w+)", r"blocks.\1.conv.pointwise_out.\2"),
    (_BLOCK + r"post_norm\.(\w+)", r"blocks.\1.post_norm.\2"),
]

PUBLISHED_POSITIONS = 10000  # rows of the published position table (a checkpoint tensor)


def sinusoidal_table(positions, dim, start=0):
    """Rows start..start+positions-1 of the transformer position table: sin on even
    channels, cos on odd ones, angle p / 10000^(2 floor(i/2) / dim)."""
    p = torch.arange(start, start + positions, dtype=torch.float64)[:, None]
    i = torch.arange(dim, dtype=torch.float64)[None, :]
    # angles rounded to float32 before sin/cos, as the published table was computed
    angle = (p / torch.pow(10000.0, 2 * torch.div(i, 2, rounding_mode="floor") / dim)).float()
    return torch.where(i.long() % 2 == 0, torch.sin(angle), torch.cos(angle))


class _FeedForward(nn.Module):
    def __init__(self, dim, mult):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, dim * mult)
        self.down = nn.Linear(dim * mult, dim)

    def forward(self, x):
        return self.down(F.silu(self.up(self.norm(x))))


class _TCMAttention(nn.Module):
    """Multi-head self-attention with one extra token per head (module docstring)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.head_proj = nn.Linear(self.head_dim, dim)
        self.head_norm = nn.LayerNorm(self.head_dim)
        self.head_pos = nn.Parameter(torch.zeros(1, heads, dim))

    def forward(self, x, mask):
        batch, tokens, dim = x.shape
        h, dh = self.heads, self.head_dim
        per_head = masked_mean(x.view(batch, tokens, h, dh), mask, dim=1)  # [B, h, dh]
        head_tokens = self.head_proj(per_head).view(batch, h, h, dh)
        head_tokens = F.gelu(self.head_norm(head_tokens)).flatten(2) + self.head_pos
        seq = torch.cat([x, head_tokens], dim=1)
        q, k, v = self.qkv(seq).view(batch, tokens + h, 3, h, dh).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) * dh ** -0.5
        key_mask = None if mask is None else torch.cat([mask, mask.new_ones(batch, h)], dim=1)
        attn = masked_softmax(scores, key_mask, dim=-1)
        out = self.proj((attn @ v).transpose(1, 2).reshape(batch, tokens + h, dim))
        cls, frames, heads_out = out[:, :1], out[:, 1:tokens], out[:, tokens:]
        frame_mask = None if mask is None else mask[:, 1:]
        cls = cls + heads_out.mean(dim=1, keepdim=True) + masked_mean(frames, frame_mask, dim=1)[:, None]
        return torch.cat([cls, frames], dim=1)


class _ConvModule(nn.Module):
    def __init__(self, dim, expansion, kernel_size):
        super().__init__()
        inner = dim * expansion
        self.padding = (kernel_size // 2, kernel_size // 2 - (kernel_size + 1) % 2)
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv1d(dim, 2 * inner, 1)
        self.depthwise = nn.Conv1d(inner, inner, kernel_size, groups=inner)
        self.batch_norm = nn.BatchNorm1d(inner)
        self.pointwise_out = nn.Conv1d(inner, dim, 1)

    def forward(self, x, mask):
        y = F.glu(self.pointwise_in(self.norm(x).transpose(1, 2)), dim=1)
        y = zero_padding(y.transpose(1, 2), mask).transpose(1, 2)
        y = self.depthwise(F.pad(y, self.padding))
        y = self.pointwise_out(F.silu(self.batch_norm(y)))
        return y.transpose(1, 2)


class _ConformerBlock(nn.Module):
    def __init__(self, dim, heads, ff_mult, conv_expansion, kernel_size):
        super().__init__()
        self.ff1 = _FeedForward(dim, ff_mult)
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = _TCMAttention(dim, heads)
        self.conv = _ConvModule(dim, conv_expansion, kernel_size)
        self.ff2 = _FeedForward(dim, ff_mult)
        self.post_norm = nn.LayerNorm(dim)

    def forward(self, x, mask):
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn(self.attn_norm(x), mask)
        x = x + self.conv(x, mask)
        x = x + 0.5 * self.ff2(x)
        return self.post_norm(x)


class TCMBackend(Backend):
    """`forward(feats [B, T, D], mask [B, T] or None) -> logits [B, 2]` (module docstring);
    the embedding is the class token's output."""

    default_input = "first-64600"
    paper_name = "Conformer+TCM"
    published_keys = PUBLISHED_KEYS

    def __init__(self, embed_dim, num_layers=None, emb_size=144, heads=4, n_encoders=4, kernel_size=31, ff_mult=4,
                 conv_expansion=2, positions=PUBLISHED_POSITIONS):
        del num_layers  # reads the last layer only
        super().__init__()
        self.proj = nn.Linear(embed_dim, emb_size)
        self.norm = nn.BatchNorm2d(num_features=1)
        # a checkpoint tensor in the published layout, never trained; longer inputs extend it
        self.positional = nn.Parameter(sinusoidal_table(positions, emb_size)[None], requires_grad=False)
        self.class_token = nn.Parameter(torch.rand(1, emb_size))
        self.blocks = nn.ModuleList(_ConformerBlock(emb_size, heads, ff_mult, conv_expansion, kernel_size)
                                    for _ in range(n_encoders))
        self.out = nn.Linear(emb_size, 2)

    @staticmethod
    def config_from_state_dict(sd):
        """The constructor arguments that give state dict `sd` (this module's keys) its shapes."""
        emb, embed_dim = sd["proj.weight"].shape
        depthwise = sd["blocks.0.conv.depthwise.weight"].shape
        return dict(embed_dim=embed_dim, emb_size=emb, heads=sd["blocks.0.attn.head_pos"].shape[1],
                    n_encoders=len({k.split(".")[1] for k in sd if k.startswith("blocks.")}),
                    kernel_size=depthwise[2], ff_mult=sd["blocks.0.ff1.up.weight"].shape[0] // emb,
                    conv_expansion=depthwise[0] // emb, positions=sd["positional"].shape[1])

    def _positions(self, frames, device):
        table = self.positional[0, :frames]
        if frames > table.shape[0]:
            extra = sinusoidal_table(frames - table.shape[0], table.shape[1], start=table.shape[0])
            table = torch.cat([table, extra.to(device=device, dtype=table.dtype)])
        return table

    def forward(self, feats, mask=None, return_embedding=False):
        batch, frames, _ = feats.shape
        x = F.selu(self.norm(self.proj(feats).unsqueeze(1))).squeeze(1)
        x = x + self._positions(frames, x.device)
        x = torch.cat([self.class_token.expand(batch, 1, -1), x], dim=1)
        token_mask = None if mask is None else torch.cat([mask.new_ones(batch, 1), mask], dim=1)
        for block in self.blocks:
            x = block(x, token_mask)
        emb = x[:, 0]
        logits = self.out(emb)
        return (logits, emb) if return_embedding else logits


register_backend("tcm", TCMBackend)
