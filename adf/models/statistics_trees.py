"""A detector without a network: clip statistics (front-end) + gradient-boosted trees (back-end).

The front-end (adf.models.clip_statistics) turns each utterance into a fixed vector of
spectral-envelope and voice-source statistics; the back-end (adf.models.boosted_trees) is an
ensemble of shallow trees fitted by scikit-learn's GradientBoostingClassifier. Trees are not
trained by gradient descent: `fit` takes the statistics of the training clips and their labels
in one pass (adf.fitting runs it from the recipes' train.py), and the fitted ensemble is saved
and loaded as tensors like any other detector's weights, so `adf detect`, the scoring engine
and the recipes treat it as they treat the networks.

It answers the WaveformDetector calls (adf.models.waveform) with the whole-utterance input
policy: the same layer-normed 16 kHz clip the SSL models see. Logits are [-f/2, f/2] for the
trees' log-odds f of real, so the score logit_real - logit_fake is f; the embedding is the
statistics vector.
"""
from __future__ import annotations

import numpy as np
import torch

from adf.models.boosted_trees import TreeEnsemble
from adf.models.clip_statistics import MIN_SAMPLES, STATISTICS, clip_statistics, statistics_size
from adf.models.waveform import WaveformDetector

# scikit-learn's defaults for GradientBoostingClassifier, except the seed (its feature order
# tie-breaks); deterministic: no subsampling.
FIT_DEFAULTS = dict(n_trees=100, depth=3, learning_rate=0.1, seed=0)


class StatisticsTrees(WaveformDetector):
    """Clip statistics (every family of adf.models.clip_statistics) scored by `n_trees`
    boosted trees of depth `depth` (0 trees: not fitted yet)."""

    input_policy = "whole"
    min_samples = MIN_SAMPLES
    fitted_in_one_pass = True  # adf.train fits it (adf.fitting) instead of running the Brain
    # (adf.onnx_export: tracing would freeze the statistics of the example clip into the graph)
    not_exportable = "its clip statistics are computed by numpy and scipy, outside the torch graph"

    families = tuple(STATISTICS)

    def __init__(self, n_trees=0, depth=FIT_DEFAULTS["depth"]):
        super().__init__()
        self.name = "stats_trees"
        self.trees = TreeEnsemble(n_trees, depth, statistics_size(self.families))
        self.config = dict(n_trees=n_trees, depth=depth)

    @classmethod
    def options_from_state_dict(cls, state_dict):
        """The constructor options a fitted ensemble's tensors imply (for loading)."""
        n_trees, depth = TreeEnsemble.options_from_state_dict(state_dict, "trees.")
        return dict(n_trees=n_trees, depth=depth)

    def statistics(self, wav):
        """The front-end: one clip [T] -> its statistics vector, float32 [F]."""
        return torch.from_numpy(clip_statistics(wav, self.families))

    def fit(self, features, labels, n_trees=FIT_DEFAULTS["n_trees"], depth=None,
            learning_rate=FIT_DEFAULTS["learning_rate"], seed=FIT_DEFAULTS["seed"]):
        """Fit the trees on statistics `features` [N, F] (from `statistics`) and `labels` [N]
        (1 = real, 0 = fake); returns self."""
        from sklearn.ensemble import GradientBoostingClassifier

        features = np.asarray(features, dtype=np.float32)
        labels = np.asarray(labels).astype(int)
        if set(np.unique(labels)) != {0, 1}:
            raise ValueError("fitting needs real (1) and fake (0) clips; got labels "
                             f"{sorted(set(labels.tolist()))}")
        depth = depth or self.trees.depth
        model = GradientBoostingClassifier(n_estimators=n_trees, max_depth=depth, learning_rate=learning_rate,
                                           random_state=seed).fit(features, labels)
        self.trees = TreeEnsemble(n_trees, depth, self.trees.n_features).load_sklearn(model)
        self.config.update(n_trees=n_trees, depth=depth)
        return self

    def score_statistics(self, features):
        """The trees' log-odds of real [B] for statistics [B, F]."""
        if self.trees.n_trees == 0:
            raise RuntimeError("the stats_trees detector is not fitted: fit it with "
                               "`python train.py hparams/stats_trees.yaml` (recipes/posttrain)")
        return self.trees(features)

    def detect(self, wav):
        emb = torch.stack([self.statistics(w) for w in wav]).to(wav.device)
        half = self.score_statistics(emb) / 2
        return torch.stack([-half, half], dim=1), emb

    def parameter_split(self):
        """(front-end, back-end) sizes: the statistics have no weights; the trees count one
        threshold per split and one value per leaf."""
        return 0, self.trees.thresholds.numel() + self.trees.leaves.numel() + 1
