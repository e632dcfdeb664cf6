"""adf.atomic: a write that fails leaves the old file as it was and no debris."""
import os
import stat

import pytest

from adf.atomic import atomic_open, atomic_path


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half of the new conte")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["scores.csv"]


def test_complete_write_replaces_with_umask_permissions_and_keeps_the_extension(tmp_path):
    target = tmp_path / "sub" / "cut.flac"  # the folder is created
    old = os.umask(0o027)
    try:
        with atomic_path(target) as tmp:
            assert tmp.endswith(".flac") and os.path.dirname(tmp) == str(target.parent)
            with open(tmp, "wb") as fh:
                fh.write(b"new")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(target.parent) == ["cut.flac"]
