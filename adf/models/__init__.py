"""SSL backbones and the detector built on them."""
