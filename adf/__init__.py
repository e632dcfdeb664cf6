"""adf: post-training self-supervised speech models into deepfake speech detectors."""

__version__ = "0.1.0"


def __getattr__(name):
    # `from adf import Detector` without importing torch for every `import adf` (CLI start-up)
    if name == "Detector":
        from adf.detector import Detector

        return Detector
    raise AttributeError(f"module 'adf' has no attribute {name!r}")
