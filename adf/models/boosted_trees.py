"""Gradient-boosted decision trees as a torch module: fitted by scikit-learn, scored by torch.

`TreeEnsemble` holds a binary classifier's trees as plain tensors, so an ensemble is saved
in a safetensors checkpoint like any other weights (nothing pickled) and scored on any
device without scikit-learn. Every tree is stored complete to depth `depth`: node i's
children are 2i+1 and 2i+2, the last 2^depth positions are the leaves. A tree that stopped
splitting early gets splits that always go left (threshold = the largest float32) and its leaf value copied to
every position below, so traversal is `depth` gathers for every tree at once.

scikit-learn's trees compare float32 features with float64 thresholds (`x <= t`); storing
the largest float32 not above t keeps every comparison of a float32 x the same, so the
ensemble reproduces `GradientBoostingClassifier.decision_function` up to float32 summation.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

# "always left": the largest float32 (not +inf, which the checkpoint loader refuses as a
# damaged weight); clip statistics are finite and at most this (adf.models.clip_statistics)
LEFT_ALWAYS = float(np.finfo(np.float32).max)


def _floor_float32(t):
    """The largest float32 <= the float64 `t` (see the module docstring)."""
    t32 = np.float32(t)
    return t32 if float(t32) <= t else np.nextafter(t32, np.float32(-np.inf))


def complete_tree(tree, depth, scale):
    """(features [2^depth - 1], thresholds [2^depth - 1], leaves [2^depth]) of a fitted
    scikit-learn regression tree (`estimator.tree_`, public arrays) at most `depth` deep, its
    leaf values multiplied by `scale` (the learning rate)."""
    n_inner = 2 ** depth - 1
    features = np.zeros(n_inner, dtype=np.int64)
    thresholds = np.full(n_inner, LEFT_ALWAYS, dtype=np.float32)
    leaves = np.zeros(2 ** depth, dtype=np.float32)

    def fill(node, pos, level):
        if level == depth:
            if tree.children_left[node] != -1:
                raise ValueError(f"a tree is deeper than depth {depth}")
            leaves[pos - n_inner] = scale * tree.value[node].item()
            return
        if tree.children_left[node] == -1:  # a leaf above the last level: left always
            fill(node, 2 * pos + 1, level + 1)
            fill(node, 2 * pos + 2, level + 1)
            return
        features[pos] = tree.feature[node]
        thresholds[pos] = _floor_float32(tree.threshold[node])
        fill(tree.children_left[node], 2 * pos + 1, level + 1)
        fill(tree.children_right[node], 2 * pos + 2, level + 1)

    fill(0, 0, 0)
    return features, thresholds, leaves


class TreeEnsemble(nn.Module):
    """`n_trees` trees of depth `depth` over `n_features` inputs; forward(x [B, F]) -> the
    log-odds of class 1 [B] (bias + the sum of every tree's leaf)."""

    def __init__(self, n_trees=0, depth=3, n_features=1):
        super().__init__()
        if depth < 1:
            raise ValueError(f"tree depth must be at least 1 (got {depth})")
        self.depth, self.n_features = depth, n_features
        inner = 2 ** depth - 1
        self.register_buffer("features", torch.zeros(n_trees, inner, dtype=torch.long))
        self.register_buffer("thresholds", torch.full((n_trees, inner), LEFT_ALWAYS))
        self.register_buffer("leaves", torch.zeros(n_trees, inner + 1))
        self.register_buffer("bias", torch.zeros(1))

    @property
    def n_trees(self):
        return self.features.shape[0]

    @staticmethod
    def options_from_state_dict(state_dict, prefix=""):
        """(n_trees, depth) that the tensors under `prefix` have."""
        n_trees, inner = state_dict[prefix + "features"].shape
        depth = int(np.log2(inner + 1))
        if 2 ** depth - 1 != inner:
            raise ValueError(f"{prefix}features: {inner} inner nodes is not 2^depth - 1")
        return n_trees, depth

    def load_sklearn(self, model):
        """Take the trees of a fitted binary `sklearn.ensemble.GradientBoostingClassifier`
        (log-loss, classes [0, 1]) whose trees are at most `self.depth` deep."""
        if list(model.classes_) != [0, 1]:
            raise ValueError(f"the classifier's classes are {list(model.classes_)}, not [0, 1]")
        if model.n_features_in_ != self.n_features:
            raise ValueError(f"the classifier takes {model.n_features_in_} features, this ensemble "
                             f"{self.n_features}")
        trees = [complete_tree(est.tree_, self.depth, model.learning_rate) for est in model.estimators_[:, 0]]
        features, thresholds, leaves = (torch.from_numpy(np.stack(a)) for a in zip(*trees))
        # The initial log-odds (the class prior): the decision function minus the trees, at any x.
        x = np.zeros((1, self.n_features), dtype=np.float32)
        trees_sum = sum(model.learning_rate * est.predict(x)[0] for est in model.estimators_[:, 0])
        bias = float(model.decision_function(x)[0]) - trees_sum
        device = self.bias.device
        self.features, self.thresholds, self.leaves = features.to(device), thresholds.to(device), leaves.to(device)
        self.bias = torch.tensor([bias], dtype=torch.float32, device=device)
        return self

    def forward(self, x):
        x = x.float()
        batch = x.shape[0]
        node = torch.zeros(batch, self.n_trees, dtype=torch.long, device=x.device)
        for _ in range(self.depth):
            feature = self.features.gather(1, node.T).T  # [B, trees]
            threshold = self.thresholds.gather(1, node.T).T
            right = x.gather(1, feature) > threshold
            node = 2 * node + 1 + right.long()
        leaf = node - (2 ** self.depth - 1)
        return self.leaves.gather(1, leaf.T).T.sum(1) + self.bias
