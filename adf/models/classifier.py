"""SSLClassifier: SSL backbone -> back-end (default: mean over valid frames -> Linear(D, 2)).

The back-end is any of adf.models.backends (interface documented there); the
default mean back-end is held as `proj_fc`, other back-ends as `backend`, so
the AntiDeepfake checkpoints' key names are unchanged.

Logits are ordered [fake, real] as in AntiDeepfake, so label 1 = real and
`logits[:, 1] - logits[:, 0]` is the bona fide score. Unlike the reference,
pooling ignores padded frames, so a batch gives the same result as scoring
each utterance alone.

Inference (eval mode) on the CPU runs the CNN through `adf.models.frontend`
(the same weights as time-major GEMMs, several times faster); on GPUs,
training and inference run the CNN (layer-norm CNNs) and the positional
convolution through `adf.models.batched_convs` (time-major on the padded
batch, without torchaudio's transposes and cuDNN's slow grouped kernels), and
CPU training runs a layer-norm CNN through it too (adf.models.conv_paths
decides, in one place; torchaudio's modules remain selectable). The
backbone can be kept in bf16 (`set_precision("bf16")`: weights cast once, no
autocast, no fp32 copy; on the CPU layer norms keep fp32 parameters); pooling
and the head always run in fp32.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.checkpoint import checkpoint

from adf.models import batched_convs
from adf.models.backbones import backbone_config, build_backbone, feature_grad_mult, is_wavlm
from adf.models.backends import MeanLinear, build_backend, stack_layers, uses_all_layers
from adf.models.conv_paths import ConvPaths, route
from adf.models.frontend import batch_features
from adf.precision import dtype_of


class _GradScale(torch.autograd.Function):
    """Identity forward; scales the gradient by `scale` backward."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def _checkpoint_activations(layer):
    """Make `layer` recompute its activations in the backward pass instead of storing them.

    The layer's `forward` is wrapped in place (not the module), so parameter
    names and checkpoints are unchanged. Non-reentrant checkpointing restores
    the RNG state, so dropout draws the same masks in the recomputation, and
    it works under DDP.
    """
    plain_forward = layer.forward

    def forward(*args, **kwargs):
        if layer.training and torch.is_grad_enabled():
            return checkpoint(plain_forward, *args, use_reentrant=False, **kwargs)
        return plain_forward(*args, **kwargs)

    layer.forward = forward


class SSLClassifier(nn.Module):
    """Detector: `forward(wav [B, T], lengths [B] or None) -> logits [B, 2]`.

    `wav` must already be 16 kHz, mono and layer-normed per utterance
    (adf.audio). `lengths` are valid sample counts; padded samples must be 0.
    Memory options for the 1B/2B models: `freeze_cnn` keeps the convolutional
    feature encoder fixed (no gradients, no stored activations);
    `activation_checkpointing` recomputes each transformer layer's activations
    during the backward pass (about a third more compute, far less memory).
    Speed options: `compile_layers` (see `compile_layers`); `conv_paths`, which
    code runs the convolutions (adf.models.conv_paths; default: adf's fast paths
    where they apply).
    `name` is the backbone; `backend` / `backend_options` choose the back-end
    (adf.models.backends); `self.name` is the registry name
    (`<backbone>` for the mean back-end, else `<backbone>_<backend>`).
    """

    def __init__(self, name: str, freeze_cnn: bool = False, activation_checkpointing: bool = False,
                 compile_layers: bool = False, backend: str = "mean", backend_options: dict | None = None,
                 conv_paths: ConvPaths | None = None, **backbone_overrides):
        super().__init__()
        self.backbone_name = name
        self.backend_name = backend
        self.backend_options = dict(backend_options or {})
        self.name = name if backend == "mean" else f"{name}_{backend}"
        self.config = backbone_config(name, **backbone_overrides)
        self.backbone = build_backbone(name, **backbone_overrides)
        self.embed_dim = self.config["encoder_embed_dim"]
        if backend == "mean":
            if self.backend_options:
                raise ValueError("the mean back-end takes no options")
            self.proj_fc = MeanLinear(self.embed_dim)
        else:
            self.backend = build_backend(backend, self.embed_dim, self.config["encoder_num_layers"],
                                         **self.backend_options)
        # how inputs are cut and scaled (adf.input_policy); the registry and checkpoints set it
        self.input_policy = getattr(self.head, "default_input", "whole")
        self.grad_mult = feature_grad_mult(name)
        self.wavlm = is_wavlm(self.config)
        # group_norm normalises the first conv layer over time, so padding would
        # change its statistics: such CNNs run on each unpadded utterance.
        self.per_utterance_cnn = self.config["extractor_mode"] == "group_norm"
        self.conv_paths = conv_paths or ConvPaths()  # adf.models.conv_paths
        self.batched_cnn = batched_convs.supports_cnn(self.backbone.feature_extractor)
        if freeze_cnn:
            for p in self.backbone.feature_extractor.parameters():
                p.requires_grad_(False)
        if activation_checkpointing:
            for layer in self.backbone.encoder.transformer.layers:
                _checkpoint_activations(layer)
        if compile_layers:
            self.compile_layers()

    def _replaced_by_conv_paths(name):  # noqa: N805 - runs in the class body
        """The attributes `conv_paths` replaced: assigning one fails loudly instead of
        silently leaving the model on another path than the caller meant."""
        def fail(self, value=None):
            raise AttributeError(f"SSLClassifier.{name} is gone: give conv_paths=ConvPaths(...) or call "
                                 "set_conv_paths (adf.models.conv_paths)")
        return property(fail, fail)

    fast_frontend = _replaced_by_conv_paths("fast_frontend")
    cnn_impl = _replaced_by_conv_paths("cnn_impl")
    pos_conv_impl = _replaced_by_conv_paths("pos_conv_impl")
    del _replaced_by_conv_paths

    def set_conv_paths(self, paths: ConvPaths) -> SSLClassifier:
        """Run the convolutions through `paths` from now on (adf.models.conv_paths); returns self."""
        if not isinstance(paths, ConvPaths):
            raise TypeError(f"conv_paths must be a ConvPaths, not {type(paths).__name__}")
        self.conv_paths = paths
        return self

    def compile_layers(self, mode=None):
        """Compile each transformer layer with torch.compile (TorchInductor); returns self.

        The layers hold nearly all of the FLOPs; compiled, their layer norms,
        GELU, bias and residual additions become a few fused kernels (fewer
        kernel launches and passes over memory; on the CPU the host time per
        call grows a little, bench/overhead.py). Each layer is compiled
        on its own because all layers share one graph: the compilation is paid
        once, not once per layer as for the whole encoder. Shapes are dynamic
        (one graph for any batch size and length; with and without padding
        mask: two). Compilation is lazy (the first forward pass), state-dict
        keys do not change, and it composes with activation checkpointing and
        DDP. `mode` is torch.compile's (e.g. "max-autotune-no-cudagraphs").
        """
        for layer in self.backbone.encoder.transformer.layers:
            layer.compile(dynamic=True, mode=mode)
        return self

    def _cnn(self, wav: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        fe = self.backbone.feature_extractor
        if lengths is None or not self.per_utterance_cnn:
            return fe(wav, lengths)
        # lengths.tolist(): one device sync for the batch, not one per utterance
        feats = [fe(wav[i : i + 1, :n], None)[0][0] for i, n in enumerate(lengths.tolist())]
        frame_lengths = torch.tensor([f.shape[0] for f in feats], device=wav.device)
        return nn.utils.rnn.pad_sequence(feats, batch_first=True), frame_lengths

    @property
    def head(self):
        """The back-end module (`proj_fc` for the mean back-end, else `backend`)."""
        return self.proj_fc if self.backend_name == "mean" else self.backend

    @property
    def aux_loss(self):
        """The back-end's auxiliary training loss of the last forward pass, or None."""
        return getattr(self.head, "aux_loss", None)

    @property
    def backbone_dtype(self):
        """The dtype the backbone computes in: that of its weight matrices (see `set_precision`)."""
        return self.backbone.encoder.feature_projection.projection.weight.dtype

    def set_precision(self, precision):
        """Run the backbone in `precision` ("fp32", "bf16" or "fp16"); returns self.

        The backbone's weights are cast in place. On the CPU the affine
        parameters of its layer norms stay fp32 (the CPU's layer norm takes
        bf16/fp16 input with fp32 parameters at no cost): rounded to bf16 they
        moved the trained egs detector's probabilities more than all other
        weights' rounding together (bench/README.md, --agreement-sources).
        CUDA's layer norm wants one dtype, so on other devices, and after a
        move off the CPU, the norms follow the weights (`_apply`). The head
        stays fp32; inputs are cast to match in `frames`. Values already
        rounded stay rounded: call this on full-precision weights
        (load_model(dtype=...) reads norms exactly).
        """
        dtype = dtype_of(precision)
        exact_norms = self._device.type == "cpu"
        for module in self.backbone.modules():
            keep = torch.float32 if exact_norms and isinstance(module, nn.LayerNorm) else dtype
            module._apply(lambda t, keep=keep: t.to(keep) if t.is_floating_point() else t, recurse=False)
        self.head.float()
        return self

    def _apply(self, fn, recurse=True):
        """nn.Module's (every .to / .cuda / .float ... goes through it), then, off
        the CPU, layer norms kept in fp32 by `set_precision` take the weights'
        dtype again: there layer norm needs input and parameters in one dtype."""
        super()._apply(fn, recurse)
        if self._device.type != "cpu":
            dtype = self.backbone_dtype
            for module in self.backbone.modules():
                if isinstance(module, nn.LayerNorm) and module.weight is not None and module.weight.dtype != dtype:
                    module.to(dtype)
        return self

    @property
    def _device(self):
        return self.backbone.encoder.feature_projection.projection.weight.device

    def frames(self, wav: torch.Tensor, lengths: torch.Tensor | None = None,
               layer_outputs: list | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Last-layer frame features [B, F, D] and the valid frame counts [B] (or None).
        A list given as `layer_outputs` receives every transformer layer's output."""
        paths = self.conv_paths
        way = route(paths, on_cpu=wav.device.type == "cpu", training=self.training,
                    autocast=torch.is_autocast_enabled(wav.device.type), cnn_batchable=self.batched_cnn)
        fe = self.backbone.feature_extractor
        if way.utterance_frontend:
            x, frame_lengths = batch_features(fe, wav, lengths)
        elif way.batched_cnn:
            x, frame_lengths = batched_convs.cnn_features(fe, wav.to(self.backbone_dtype), lengths, paths.cnn_impl)
        else:
            x, frame_lengths = self._cnn(wav.to(self.backbone_dtype), lengths)
        mask_lengths = frame_lengths
        if way.utterance_frontend and bool((frame_lengths == x.shape[1]).all()):
            mask_lengths = None  # no padding (e.g. batch size 1): skip the all-zero attention bias
        if self.training and self.grad_mult != 1.0:
            x = _GradScale.apply(x, self.grad_mult)
        x = self._encode(x, mask_lengths, way.batched_pos, layer_outputs)
        return x, frame_lengths

    def _encode(self, features: torch.Tensor, lengths: torch.Tensor | None, batched: bool = False,
                layer_outputs: list | None = None) -> torch.Tensor:
        """torchaudio's `Encoder.forward` and `Transformer.forward` (feature
        projection, padded frames zeroed, additive attention mask of -10000,
        positional convolution, layers with layer drop), with two changes: the
        boolean-index assignment `x[mask] = 0` becomes `masked_fill` (on CUDA the
        former waits for the GPU, nonzero, in the middle of every forward pass),
        and with `batched` the positional convolution runs through
        adf.models.batched_convs. WavLM's attention takes the padding as a
        key mask and passes its relative position bias from layer to layer.
        `layer_outputs` (a list) collects each layer's output (a dropped
        layer's is its input)."""
        encoder = self.backbone.encoder
        x = encoder.feature_projection(features)
        mask = key_padding = None
        if lengths is not None:
            batch, frames, _ = x.shape
            padded = torch.arange(frames, device=x.device)[None, :] >= lengths[:, None]
            x = x.masked_fill(padded[:, :, None], 0.0)
            if self.wavlm:  # additive, in the compute dtype (torchaudio warns on a boolean one)
                key_padding = torch.zeros(padded.shape, dtype=x.dtype, device=x.device).masked_fill(
                    padded, float("-inf"))
            else:
                mask = (-10000.0 * padded[:, None, None, :].to(features.dtype)).expand(batch, 1, frames, frames)
        transformer = encoder.transformer
        pos = transformer.pos_conv_embed
        x = x + (batched_convs.positional_embedding(pos, x, self.conv_paths.pos_conv_impl) if batched else pos(x))
        if transformer.layer_norm_first:
            x = transformer.layer_norm(x)
        x = transformer.dropout(x)
        position_bias = None
        for layer in transformer.layers:
            # the same draw as torchaudio's (one number from the CPU generator per layer)
            if not (self.training and torch.rand(1).item() <= transformer.layer_drop):
                if self.wavlm:
                    x, position_bias = layer(x, None, position_bias=position_bias, key_padding_mask=key_padding)
                else:
                    x, _ = layer(x, mask)
            if layer_outputs is not None:
                layer_outputs.append(x)
        if not transformer.layer_norm_first:
            x = transformer.layer_norm(x)
        return x

    def embed(self, wav, lengths=None):
        """Utterance embedding [B, E] in fp32 (the mean back-end: the mean of the valid frames)."""
        return self.forward(wav, lengths, return_embedding=True)[1]

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None, return_embedding: bool = False):
        head = self.head
        layers = [] if uses_all_layers(head) else None
        x, frame_lengths = self.frames(wav, lengths, layers)
        feats = (stack_layers(layers) if layers is not None else x).float()
        mask = None
        if frame_lengths is not None:
            mask = torch.arange(feats.shape[-2], device=feats.device)[None, :] < frame_lengths[:, None]
        if mask is not None and not getattr(head, "takes_mask", True) and bool(mask.all()):
            mask = None  # nothing padded (fixed-length inputs): one call, batch statistics as published
        if mask is not None and not getattr(head, "takes_mask", True):
            # back-ends that cannot mask padding see each utterance's valid frames alone
            outs = [head(feats[i : i + 1, ..., :n, :], None, return_embedding=True)
                    for i, n in enumerate(frame_lengths.tolist())]
            logits, emb = torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
        else:
            logits, emb = head(feats, mask, return_embedding=True)
        return (logits, emb.float()) if return_embedding else logits


def build_classifier(name, **kwargs):
    """A randomly initialised detector `name` (any name of adf.models.registry)."""
    from adf.models.registry import build_model

    return build_model(name, **kwargs)


class _WeightNormShapes(TorchFunctionMode):
    """While a model is built on the meta device, weight norm's two tensor
    functions return empty meta tensors of the right shape.

    Registering weight norm computes the norm of the weight; on a meta tensor
    that runs torch's Python reference kernels, whose first call imports
    torch._dynamo (about a second of `adf detect`'s start-up). Only the shapes
    matter on the meta device. A mode is active only inside its `with` block
    and this thread, so nothing outside the build sees it.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.norm_except_dim and args[0].is_meta:
            v = args[0]
            dim = args[2] if len(args) > 2 else kwargs.get("dim", 0)
            shape = [1] * v.dim()
            if dim != -1:
                shape[dim] = v.shape[dim]
            return torch.empty(shape, dtype=v.dtype, device="meta")
        if func is torch._weight_norm and args[0].is_meta:
            return torch.empty(args[0].shape, dtype=args[0].dtype, device="meta")
        return func(*args, **kwargs)


def build_on_meta(name, **kwargs):
    """`build_classifier(name, **kwargs)` on the meta device: the architecture and
    its shapes without memory or initialisation, for loading weights with
    `load_state_dict(..., assign=True)` or counting parameters."""
    with _WeightNormShapes(), torch.device("meta"):
        return build_classifier(name, **kwargs)
