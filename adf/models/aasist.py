"""AASIST and AASIST-L (Jung et al., ICASSP 2022), and the AASIST back-end for SSL backbones.

Architecture (the published one, so the released weights load; parameter
names are the published code's, so its state dicts load without renaming):

* raw-waveform AASIST: fixed sinc filterbank (70 filters, 129 taps) -> |.| ->
  3x3 max pool -> BatchNorm + SELU -> six 2-D residual blocks (each ends in a
  1x3 max pool over time) -> spectral nodes (max |.| over time, plus a learnt
  positional embedding) and temporal nodes (max |.| over frequency);
* SSL back-end (SSL_Anti-spoofing's "XLS-R + AASIST"): Linear(D, 128) on
  the frame features -> 3x3 max pool over (feature, time) -> BatchNorm + SELU
  -> six residual blocks without pooling -> BatchNorm + SELU -> a 1x1-conv
  attention map whose softmax over time gives the spectral nodes and over
  frequency the temporal nodes;
* then, in both, `HeterogeneousGraph`: a graph attention layer and top-k
  graph pooling per node type, two parallel branches of two heterogeneous
  stacking graph attention layers with a learnt master node, element-wise
  max of the branches, and the readout [max |T|, mean T, max |S|, mean S,
  master] -> dropout -> Linear(5 * 32, 2). Logits are [spoof, bona fide] =
  adf's [fake, real].

Quirks of the published code, reproduced (they are listed where they live):
`ResidualBlock2d` (the pre-activation is computed and discarded),
`HeterogeneousGraph` (pool ratio 3 unused; first heterogeneous layer fed the
un-expanded master node), `HeteroGraphAttention` (one weight for both
cross-type attention directions), `GraphAttention` (batch norm over all nodes
of the batch together).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from adf.models.backends import Backend, register_backend
from adf.models.sinc import SincFilterbank
from adf.models.waveform import WaveformDetector

# The published configurations (clovaai/aasist config/AASIST.conf, AASIST-L.conf).
AASIST_CONFIGS = {
    "aasist": dict(first_conv=128, filts=[70, [1, 32], [32, 32], [32, 64], [64, 64]], gat_dims=[64, 32],
                   pool_ratios=[0.5, 0.7, 0.5, 0.5], temperatures=[2.0, 2.0, 100.0, 100.0]),
    "aasist_l": dict(first_conv=128, filts=[70, [1, 32], [32, 32], [32, 24], [24, 24]], gat_dims=[24, 32],
                     pool_ratios=[0.4, 0.5, 0.7, 0.5], temperatures=[2.0, 2.0, 100.0, 100.0]),
}
# SSL_Anti-spoofing's back-end configuration (model.py); filts[0] is the Linear's width.
SSL_AASIST_CONFIG = dict(filts=[128, [1, 32], [32, 32], [32, 64], [64, 64]], gat_dims=[64, 32],
                         pool_ratios=[0.5, 0.5, 0.5, 0.5], temperatures=[2.0, 2.0, 100.0, 100.0])


def _xavier_column(rows):
    """A [rows, 1] attention weight, Xavier-normal initialised as published."""
    weight = nn.Parameter(torch.empty(rows, 1))
    nn.init.xavier_normal_(weight)
    return weight


def _node_batch_norm(bn, x):
    """BatchNorm1d over the feature axis of [B, N, D], every node of every utterance
    pooled together (the published code's view(-1, D))."""
    return bn(x.reshape(-1, x.shape[-1])).view(x.shape)


def _pairwise_products(x):
    """[B, N, D] -> [B, N, N, D], element (i, j) = x_i * x_j."""
    return x.unsqueeze(2) * x.unsqueeze(1)


class GraphAttention(nn.Module):
    """Graph attention over fully connected nodes: [B, N, in_dim] -> [B, N, out_dim].

    Attention a_ij = softmax_j(w . tanh(W (x_i * x_j)) / temperature); output
    SELU(BN(P1 (A x) + P2 x)). Input dropout 0.2.
    """

    def __init__(self, in_dim, out_dim, temperature=1.0):
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = _xavier_column(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(p=0.2)
        self.temp = temperature

    def forward(self, x):
        x = self.input_drop(x)
        scores = torch.tanh(self.att_proj(_pairwise_products(x))) @ self.att_weight
        att = F.softmax(scores.squeeze(-1) / self.temp, dim=-1)
        x = self.proj_with_att(att @ x) + self.proj_without_att(x)
        return F.selu(_node_batch_norm(self.bn, x))


class HeteroGraphAttention(nn.Module):
    """Heterogeneous stacking graph attention over two node types and a master node.

    `forward(x1 [B, N1, in], x2 [B, N2, in], master [B or 1, 1, in] or None)`
    -> (x1', x2', master'). Each type is projected on its own, then attention
    over the joint graph uses one weight vector within type 1, one within
    type 2 and, as published, the same one (`att_weight12`) for both
    directions between the types. The master node attends to every node
    (its own projection, no batch norm or activation); None starts it at the
    mean of the nodes.
    """

    def __init__(self, in_dim, out_dim, temperature=1.0):
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = _xavier_column(out_dim)
        self.att_weight22 = _xavier_column(out_dim)
        self.att_weight12 = _xavier_column(out_dim)
        self.att_weightM = _xavier_column(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(p=0.2)
        self.temp = temperature

    def forward(self, x1, x2, master=None):
        n1 = x1.shape[1]
        x = torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1)
        if master is None:
            master = x.mean(dim=1, keepdim=True)
        x = self.input_drop(x)
        hidden = torch.tanh(self.att_proj(_pairwise_products(x)))  # [B, N, N, out]
        same1 = torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
        same1[:n1] = True
        # which weight scores edge (i, j): 11 within type 1, 22 within type 2, 12 across
        weights = torch.cat([self.att_weight11, self.att_weight22, self.att_weight12], dim=1)  # [out, 3]
        all_scores = hidden @ weights  # [B, N, N, 3]
        kind = torch.where(same1[:, None] & same1[None, :], 0, torch.where(~same1[:, None] & ~same1[None, :], 1, 2))
        scores = all_scores.gather(-1, kind[None, :, :, None].expand(x.shape[0], -1, -1, 1)).squeeze(-1)
        att = F.softmax(scores / self.temp, dim=-1)
        master = self._update_master(x, master)
        x = self.proj_with_att(att @ x) + self.proj_without_att(x)
        x = F.selu(_node_batch_norm(self.bn, x))
        return x[:, :n1], x[:, n1:], master

    def _update_master(self, x, master):
        scores = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # [B, N, 1]
        att = F.softmax(scores / self.temp, dim=1)
        return self.proj_with_attM(att.transpose(1, 2) @ x) + self.proj_without_attM(master)


class GraphPool(nn.Module):
    """Keep the top `ratio` of nodes (at least one) by a learnt sigmoid score,
    each scaled by its score; score input dropout `p`."""

    def __init__(self, ratio, in_dim, p):
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(in_dim, 1)
        self.drop = nn.Dropout(p=p) if p > 0 else nn.Identity()

    def forward(self, h):
        scores = torch.sigmoid(self.proj(self.drop(h)))  # [B, N, 1]
        keep = max(int(h.shape[1] * self.ratio), 1)
        _, idx = torch.topk(scores, keep, dim=1)
        return torch.gather(h * scores, 1, idx.expand(-1, -1, h.shape[-1]))


class ResidualBlock2d(nn.Module):
    """conv(2x3, pad 1x1) -> BN -> SELU -> conv(2x3, pad 0x1), plus the input (1x3 conv
    when the channel count changes), then optionally a 1x3 max pool over time.

    Quirk kept: blocks after the first own a pre-activation `bn1`, but the
    published forward pass feeds the block input, not BN1+SELU of it, to
    `conv1`; so bn1 never changes an output and is not computed here (it stays
    for the checkpoint layout).
    """

    def __init__(self, nb_filts, first=False, pool=True):
        super().__init__()
        c_in, c_out = nb_filts
        if not first:
            self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=(2, 3), padding=(0, 1))
        self.downsample = c_in != c_out
        if self.downsample:
            self.conv_downsample = nn.Conv2d(c_in, c_out, kernel_size=(1, 3), padding=(0, 1))
        self.pool = pool

    def forward(self, x):
        out = self.conv2(F.selu(self.bn2(self.conv1(x))))
        out = out + (self.conv_downsample(x) if self.downsample else x)
        return F.max_pool2d(out, (1, 3)) if self.pool else out


def residual_encoder(filts, pool):
    """The six residual blocks (keys `encoder.<i>.0.*`, as published)."""
    widths = [filts[1], filts[2], filts[3], filts[4], filts[4], filts[4]]
    return nn.Sequential(*[nn.Sequential(ResidualBlock2d(w, first=i == 0, pool=pool))
                           for i, w in enumerate(widths)])


class HeterogeneousGraph(nn.Module):
    """The graph part shared by AASIST and the SSL back-end; subclasses call
    `_build_graph` in their __init__ so that the parameters sit at the top
    level of the module (the published key names) and `_graph` in forward.
    """

    def _build_graph(self, spectral_nodes, channels, gat_dims, pool_ratios, temperatures):
        self.pos_S = nn.Parameter(torch.randn(1, spectral_nodes, channels))
        self.master1 = nn.Parameter(torch.randn(1, 1, gat_dims[0]))
        self.master2 = nn.Parameter(torch.randn(1, 1, gat_dims[0]))
        self.GAT_layer_S = GraphAttention(channels, gat_dims[0], temperatures[0])
        self.GAT_layer_T = GraphAttention(channels, gat_dims[0], temperatures[1])
        self.HtrgGAT_layer_ST11 = HeteroGraphAttention(gat_dims[0], gat_dims[1], temperatures[2])
        self.HtrgGAT_layer_ST12 = HeteroGraphAttention(gat_dims[1], gat_dims[1], temperatures[2])
        self.HtrgGAT_layer_ST21 = HeteroGraphAttention(gat_dims[0], gat_dims[1], temperatures[2])
        self.HtrgGAT_layer_ST22 = HeteroGraphAttention(gat_dims[1], gat_dims[1], temperatures[2])
        self.pool_S = GraphPool(pool_ratios[0], gat_dims[0], 0.3)
        self.pool_T = GraphPool(pool_ratios[1], gat_dims[0], 0.3)
        # Quirk kept: all four pools after the heterogeneous layers use pool_ratios[2];
        # pool_ratios[3] of the published configurations is never read.
        self.pool_hS1 = GraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.pool_hT1 = GraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.pool_hS2 = GraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.pool_hT2 = GraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.drop = nn.Dropout(0.5)
        self.drop_way = nn.Dropout(0.2)
        self.out_layer = nn.Linear(5 * gat_dims[1], 2)

    def _branch(self, first, second, pool_S, pool_T, master, out_T, out_S):
        t, s, m = first(out_T, out_S, master=master)
        s, t = pool_S(s), pool_T(t)
        t_aug, s_aug, m_aug = second(t, s, master=m)
        return self.drop_way(t + t_aug), self.drop_way(s + s_aug), self.drop_way(m + m_aug)

    def _graph(self, e_S, e_T):
        """Spectral nodes [B, nS, C] (before the positional embedding) and temporal
        nodes [B, nT, C] -> (logits [B, 2], readout embedding [B, 5 * gat_dims[1]])."""
        out_S = self.pool_S(self.GAT_layer_S(e_S + self.pos_S))
        out_T = self.pool_T(self.GAT_layer_T(e_T))
        # Quirk kept: the first heterogeneous layer of each branch gets the learnt
        # master node itself ([1, 1, D]), not a per-utterance copy; broadcasting
        # makes this give the copy's values.
        t1, s1, m1 = self._branch(self.HtrgGAT_layer_ST11, self.HtrgGAT_layer_ST12, self.pool_hS1,
                                  self.pool_hT1, self.master1, out_T, out_S)
        t2, s2, m2 = self._branch(self.HtrgGAT_layer_ST21, self.HtrgGAT_layer_ST22, self.pool_hS2,
                                  self.pool_hT2, self.master2, out_T, out_S)
        out_T, out_S, master = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        hidden = torch.cat([out_T.abs().amax(dim=1), out_T.mean(dim=1), out_S.abs().amax(dim=1),
                            out_S.mean(dim=1), master.squeeze(1)], dim=1)
        return self.out_layer(self.drop(hidden)), hidden


class AASIST(HeterogeneousGraph, WaveformDetector):
    """Raw-waveform AASIST (`config` "aasist" or "aasist_l", or a dict of the
    published options). Input: 16 kHz waveform [B, T], not normalised.
    `frequency_mask` is the published optional "Freq_aug" (off in both configurations)."""

    frontend_modules = ("conv_time", "first_bn", "encoder")

    def __init__(self, config="aasist", frequency_mask=False):
        super().__init__()
        options = dict(AASIST_CONFIGS[config]) if isinstance(config, str) else dict(config)
        self.name = config if isinstance(config, str) else "aasist"
        self.config = dict(options, frequency_mask=frequency_mask)
        filts = options["filts"]
        self.conv_time = SincFilterbank(filts[0], options["first_conv"], frequency_mask=frequency_mask)
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder = residual_encoder(filts, pool=True)
        # 70 filters -> 23 after the 3x3 pool; the residual blocks keep the height
        self._build_graph(filts[0] // 3, filts[-1][-1], options["gat_dims"], options["pool_ratios"],
                          options["temperatures"])
        # six 1x3 pools after a 3x3 one must leave one frame
        self.min_samples = self.conv_time.kernel_size - 1 + 3 ** 7

    def detect(self, wav):
        x = self.conv_time(wav.unsqueeze(1)).unsqueeze(1)  # [B, 1, filters, T]
        x = F.selu(self.first_bn(F.max_pool2d(x.abs(), (3, 3))))
        e = self.encoder(x).abs()  # [B, C, F, T]
        return self._graph(e.amax(dim=3).transpose(1, 2), e.amax(dim=2).transpose(1, 2))


class SSLAASISTBackend(Backend, HeterogeneousGraph):
    """AASIST as the back-end of an SSL backbone (SSL_Anti-spoofing's model.py);
    the adf back-end interface (adf.models.backends). Needs at least 3 frames."""

    takes_mask = False  # max pooling and softmax over time see every frame
    default_input = "first-64600"
    paper_name = "AASIST"

    def __init__(self, embed_dim, num_layers=None, **config):
        del num_layers
        super().__init__()
        options = {**SSL_AASIST_CONFIG, **config}
        filts = options["filts"]
        self.LL = nn.Linear(embed_dim, filts[0])
        self.first_bn = nn.BatchNorm2d(1)
        self.first_bn1 = nn.BatchNorm2d(filts[-1][-1])
        self.encoder = residual_encoder(filts, pool=False)
        channels = filts[-1][-1]
        self.attention = nn.Sequential(nn.Conv2d(channels, 128, kernel_size=1), nn.SELU(),
                                       nn.BatchNorm2d(128), nn.Conv2d(128, channels, kernel_size=1))
        self._build_graph(filts[0] // 3, channels, options["gat_dims"], options["pool_ratios"],
                          options["temperatures"])

    def forward(self, feats, mask=None, return_embedding=False):
        del mask
        x = self.LL(feats).transpose(1, 2).unsqueeze(1)  # [B, 1, 128, T]
        x = F.selu(self.first_bn(F.max_pool2d(x, (3, 3))))
        x = F.selu(self.first_bn1(self.encoder(x)))  # [B, C, F, T]
        w = self.attention(x)
        e_S = (x * F.softmax(w, dim=-1)).sum(dim=-1).transpose(1, 2)  # attention over time
        e_T = (x * F.softmax(w, dim=-2)).sum(dim=-2).transpose(1, 2)  # attention over frequency
        logits, hidden = self._graph(e_S, e_T)
        return (logits, hidden) if return_embedding else logits


register_backend("aasist", SSLAASISTBackend)
