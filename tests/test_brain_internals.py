"""The SpeechBrain internals SSLBrain relies on are listed in one place
(adf.brain.SPEECHBRAIN_INTERNALS) and are still what they were checked as."""
import hashlib
import inspect

import speechbrain as sb

from adf.brain import SPEECHBRAIN_CHECKED, SPEECHBRAIN_INTERNALS, SSLBrain


def test_every_private_override_is_listed():
    overridden = {name for name in vars(SSLBrain)
                  if name.startswith("_") and not name.startswith("__") and hasattr(sb.Brain, name)}
    listed = {name for name, (use, _, _) in SPEECHBRAIN_INTERNALS.items() if use == "overridden"}
    assert overridden == listed


def test_upstream_sources_are_the_checked_ones():
    """A SpeechBrain upgrade that changes one of these fails here: read the new
    upstream source, adapt SSLBrain, then update the hash and SPEECHBRAIN_CHECKED."""
    changed = [name for name, (_, _, digest) in SPEECHBRAIN_INTERNALS.items()
               if hashlib.sha256(inspect.getsource(getattr(sb.Brain, name)).encode()).hexdigest()[:16] != digest]
    assert not changed, (f"SpeechBrain {sb.__version__} changed {changed} (checked against "
                         f"{SPEECHBRAIN_CHECKED}); see adf.brain.SPEECHBRAIN_INTERNALS")


def test_overrides_keep_the_upstream_signature():
    for name, (use, _, _) in SPEECHBRAIN_INTERNALS.items():
        if use == "overridden":
            assert inspect.signature(getattr(SSLBrain, name)) == inspect.signature(getattr(sb.Brain, name)), name
