"""Back-ends: what turns SSL frame features into detector logits.

Every back-end is an nn.Module with `forward(feats, mask) -> logits [B, 2]`
ordered [fake, real]. `feats` is the last layer's output [B, T, D], or, when
the class sets `layers = "all"`, every transformer layer's output stacked
[B, L, T, D]; `mask` is [B, T] bool (True = valid frame) or None (no padding).
A back-end may set `self.aux_loss` (a scalar tensor) in `forward`; training
adds it to the classification loss.
"""
