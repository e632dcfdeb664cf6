"""adf: post-training self-supervised speech models into deepfake speech detectors."""

__version__ = "0.1.0"
