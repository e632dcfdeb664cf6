"""GRPO fine-tuning of a detector (group relative policy optimisation, Shao et al. 2024).

The detector's softmax over [fake, real] is the policy; an "answer" is a
label. For each utterance, G labels are sampled from the policy (the old
policy in v1), each earns reward 1 when it is the true label and 0 otherwise,
and its advantage is the reward normalised within that utterance's group of
G: (r - mean_G r) / (std_G r + eps_std). (An utterance whose G samples all agree
teaches nothing: its advantages are 0.) The loss per sample is the clipped
surrogate minus a KL penalty to a frozen reference model:

    ratio = pi(a) / pi_old(a)
    loss  = -mean[ min(ratio A, clip(ratio, 1 - eps, 1 + eps) A) - beta * k3 ]
    k3    = pi_ref(a) / pi(a) - log(pi_ref(a) / pi(a)) - 1   (unbiased, >= 0; Schulman's k3)

Two forms:
- v1 (`refresh_steps` K > 0): the old policy is a copy of the policy, refreshed
  every K optimizer steps; samples come from it and the ratio is clipped.
- v2 (K = 0, on-policy): samples come from the current policy and pi_old is
  the current policy detached, so the ratio is 1 with the gradient of
  A * log pi(a); no old copy is kept.

Memory (the reference keeps three fp32 models): the frozen reference is a copy
in reduced precision (bf16 by default) without gradients, and the old policy
exists only in v1. The reference and old policies run in eval mode (no dropout).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def group_advantages(rewards, eps_std=1e-4):
    """Advantages [B, G]: rewards normalised within each row (one utterance's group).

    The standard deviation is the population one (divide by G): with G = 2 and
    rewards (1, 0) the advantages are (+1, -1) up to eps_std.
    """
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True, unbiased=False)
    return (rewards - mean) / (std + eps_std)


def k3_kl(logp, ref_logp):
    """Per-sample k3 estimate of KL(pi || pi_ref) from the log-probabilities of the sampled actions."""
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - log_ratio - 1


def sample_labels(logits, group_size, generator=None):
    """G labels per utterance [B, G] drawn from softmax(logits) (no gradient)."""
    probs = torch.softmax(logits.detach().float(), dim=-1)
    return torch.multinomial(probs, group_size, replacement=True, generator=generator)


def grpo_loss(logits, actions, targets, ref_logits=None, old_logits=None, clip_eps=0.2, beta=0.04,
              eps_std=1e-4):
    """GRPO loss (scalar) and its parts (dict of floats) for one batch.

    logits [B, 2] of the policy (with gradient); actions [B, G] sampled labels;
    targets [B] true labels; ref_logits [B, 2] of the frozen reference (None:
    no KL term); old_logits [B, 2] of the old policy (None: on-policy, v2).
    """
    logp_all = F.log_softmax(logits.float(), dim=-1)
    logp = logp_all.gather(1, actions)
    if old_logits is None:
        old_logp = logp.detach()
    else:
        old_logp = F.log_softmax(old_logits.detach().float(), dim=-1).gather(1, actions)
    rewards = (actions == targets[:, None]).float()
    adv = group_advantages(rewards, eps_std)
    ratio = torch.exp(logp - old_logp)
    surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * adv)
    if ref_logits is not None and beta:
        ref_logp = F.log_softmax(ref_logits.detach().float(), dim=-1).gather(1, actions)
        kl = k3_kl(logp, ref_logp)
    else:
        kl = torch.zeros_like(logp)
    loss = -(surrogate - beta * kl).mean()
    parts = {"reward": float(rewards.mean()), "kl": float(kl.mean().detach()),
             "clipped": float(((ratio - 1).abs() > clip_eps).float().mean())}
    return loss, parts


class GRPO:
    """The frozen reference and (v1) old policy of one training run, and the loss.

    Built from the policy's weights at the start of fine-tuning (the post-trained
    model), before a resume restores later weights, so the reference is the
    same after a resume. `ref_precision` fp32/bf16/fp16 (from_hparams resolves
"auto"); `refresh_steps` K (0 = v2).
    """

    def __init__(self, policy, group_size=8, refresh_steps=0, clip_eps=0.2, beta=0.04,
                 ref_precision="bf16", eps_std=1e-4, seed=0):
        if group_size < 2:
            raise ValueError("GRPO needs a group of at least 2 samples per utterance (grpo_group_size)")
        if refresh_steps < 0 or clip_eps <= 0 or beta < 0:
            raise ValueError("grpo_refresh_steps must be >= 0, grpo_clip_eps > 0 and grpo_beta >= 0")
        self.group_size, self.refresh_steps = group_size, refresh_steps
        self.clip_eps, self.beta, self.eps_std = clip_eps, beta, eps_std
        self.reference = self._frozen_copy(policy, ref_precision) if beta else None
        self.old = self._frozen_copy(policy, "fp32") if refresh_steps else None
        self.generator = torch.Generator().manual_seed(seed)

    @staticmethod
    def _frozen_copy(policy, precision):
        """An eval-mode copy without gradients, built on the meta device and given
        copies of the policy's tensors already in `precision` (layer norms and the
        head stay fp32, as SSLClassifier.set_precision leaves them), so no
        transient fp32 copy raises the peak memory."""
        from torch import nn

        from adf.models.classifier import build_on_meta
        from adf.precision import dtype_of

        policy = getattr(policy, "module", policy)  # unwrap DDP
        dtype = dtype_of(precision)
        frozen = build_on_meta(policy.name)
        exact = {f"{name}.{p}" for name, m in frozen.named_modules() if isinstance(m, nn.LayerNorm)
                 for p, _ in m.named_parameters(recurse=False)}
        exact |= {f"proj_fc.{p}" for p, _ in frozen.proj_fc.named_parameters()}
        weights = {k: v.detach().clone() if not v.is_floating_point()
                   else v.detach().to(torch.float32 if k in exact else dtype, copy=True)
                   for k, v in policy.state_dict().items()}
        frozen.load_state_dict(weights, strict=True, assign=True)
        if precision != "fp32":
            frozen.set_precision(precision)
        frozen.requires_grad_(False)
        return frozen.eval()

    def refresh(self, policy):
        """v1: copy the policy's current weights into the old policy."""
        if self.old is not None:
            self.old.load_state_dict(getattr(policy, "module", policy).state_dict())

    def maybe_refresh(self, policy, optimizer_step):
        """v1: refresh the old policy every K optimizer steps."""
        if self.old is not None and optimizer_step % self.refresh_steps == 0:
            self.refresh(policy)

    @torch.no_grad()
    def _logits(self, model, wavs, lengths):
        return model(wavs, lengths).float()

    def loss(self, logits, targets, wavs, lengths):
        """(loss, parts) for a batch whose policy logits are `logits`."""
        old_logits = self._logits(self.old, wavs, lengths) if self.old is not None else None
        ref_logits = self._logits(self.reference, wavs, lengths) if self.reference is not None else None
        source = old_logits if old_logits is not None else logits
        actions = sample_labels(source.cpu(), self.group_size, self.generator).to(logits.device)
        return grpo_loss(logits, actions, targets, ref_logits, old_logits, self.clip_eps, self.beta,
                         self.eps_std)


def from_hparams(policy, hparams):
    """A GRPO for `policy` from the recipe's hparams (grpo_* keys, defaults above)."""
    from adf.precision import resolve

    get = lambda key, default: getattr(hparams, key, default)  # noqa: E731
    # auto: bf16 where the device computes it natively; an emulated bf16 reference
    # (an AVX2-only CPU) would cost tens of times its fp32 forward pass
    device = next(getattr(policy, "module", policy).parameters()).device
    ref_precision = resolve(get("grpo_ref_precision", "auto"), device, purpose="training").precision
    return GRPO(policy, group_size=get("grpo_group_size", 8), refresh_steps=get("grpo_refresh_steps", 0),
                clip_eps=get("grpo_clip_eps", 0.2), beta=get("grpo_beta", 0.04),
                ref_precision=ref_precision, seed=get("seed", 0))
