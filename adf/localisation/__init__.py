"""Partial-spoof localisation: where in an utterance the fake speech is.

* `regions`: the manifest's `FakeRegions` column (docs/data.md) and what is
  derived from it: segment labels at a resolution, frame targets at the
  backbone's frame rate, and regions back from a thresholded score sequence.
* `metrics`: segment-level (point-based) EER at the PartialSpoof resolutions,
  range-based EER, and precision/recall/F1 of fake regions with a collar.
* `scores`: frame scores of a detector, segment scores at a resolution, the
  RTTM of the fake regions (`adf detect --resolution`).
* `timeline`: a figure of one utterance (reference regions against scores).
"""
