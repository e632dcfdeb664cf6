"""The shared machinery: header reading, caching, parallel probing, the registry and the CLI."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from corpus_tree import write_audio, write_text

from adf.data import audio_info
from adf.data.audio_info import AudioInfo, probe_file, probe_files
from adf.data.corpora import CORPORA
from adf.data.manifest import COLUMNS, read_manifest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, sr, channels, subtype, encoding, bits", [
    ("a.wav", 16000, 1, "PCM_16", "PCM_S", 16),
    ("b.wav", 22050, 2, "PCM_24", "PCM_S", 24),
    ("c.wav", 8000, 1, "FLOAT", "PCM_F", 32),
    ("d.wav", 8000, 1, "PCM_U8", "PCM_U", 8),
    ("e.wav", 8000, 1, "ULAW", "ULAW", 8),
    ("f.flac", 44100, 1, "PCM_16", "FLAC", 16),
    ("g.flac", 48000, 2, "PCM_24", "FLAC", 24),
    ("h.ogg", 48000, 1, "VORBIS", "VORBIS", 0),
    ("i.mp3", 44100, 1, None, "MP3", 0),
])
def test_header_columns(tmp_path, name, sr, channels, subtype, encoding, bits):
    path = write_audio(tmp_path / name, 0.25, sr, channels, subtype)
    info, reason = probe_file(str(path))
    assert reason is None
    assert (info.sample_rate, info.channels, info.encoding, info.bits) == (sr, channels, encoding, bits)
    frames = sf.info(str(path)).frames
    assert info.frames == frames and info.duration == round(frames / sr, 2)


def test_duration_rounds_to_two_decimals():
    assert AudioInfo(20800, 16000, 1, "PCM_S", 16).duration == 1.3
    assert AudioInfo(16159, 16000, 1, "PCM_S", 16).duration == 1.01  # 1.0099 s


def test_unusable_files_give_reasons(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"this is not audio" * 10)
    sf.write(str(tmp_path / "nosamples.wav"), np.zeros(0, np.float32), 16000)
    write_audio(tmp_path / "tiny.wav", 0.0001, 16000)  # 2 samples: 0.00 s
    reasons = {n: probe_file(str(tmp_path / n))[1] for n in
               ["empty.wav", "junk.wav", "nosamples.wav", "tiny.wav", "absent.wav"]}
    assert "empty" in reasons["empty.wav"]
    assert "cannot decode audio" in reasons["junk.wav"]
    assert "no audio samples" in reasons["nosamples.wav"]
    assert "too short" in reasons["tiny.wav"]
    assert "does not exist" in reasons["absent.wav"]


def _tree(tmp_path, n):
    paths = [write_audio(tmp_path / f"{i:03d}.wav", 0.01 * (i % 7 + 1), 16000 if i % 2 else 8000)
             for i in range(n)]
    (tmp_path / "bad.wav").write_bytes(b"RIFF....junk")
    return [str(p) for p in paths] + [str(tmp_path / "bad.wav")]


def test_parallel_equals_serial(tmp_path, monkeypatch):
    paths = _tree(tmp_path, 40)
    monkeypatch.setattr(audio_info, "MIN_PARALLEL_FILES", 1)
    serial = probe_files(paths, jobs=1)
    parallel = probe_files(paths, jobs=2)
    assert serial == parallel
    assert isinstance(serial[paths[-1]], str) and serial[paths[0]].sample_rate == 8000


def test_cache_reuses_unchanged_files_only(tmp_path, monkeypatch):
    paths = _tree(tmp_path / "audio", 5)
    cache = tmp_path / "out.csv.cache.json"
    first = probe_files(paths, cache_path=cache)
    opened = []
    real = audio_info.probe_file
    monkeypatch.setattr(audio_info, "probe_file", lambda p: opened.append(p) or real(p))
    assert probe_files(paths, cache_path=cache) == first and opened == []
    write_audio(Path(paths[0]), 0.5, 16000)  # changed size -> read again
    os.utime(paths[0], ns=(1, 1))
    again = probe_files(paths, cache_path=cache)
    assert opened == [paths[0]] and again[paths[0]].frames == 8000
    assert again[paths[-1]] == first[paths[-1]]  # cached failures stay reported


def test_registry_names_and_prefixes():
    expected = {
        "egs", "ASVspoof2019-LA", "ASVspoof2021-LA", "ASVspoof2021-DF", "ASVspoof5", "CFAD",
        "DECRO", "DFADD", "DiffusionDeepfake", "DiffSSD", "DSD", "HABLA", "MLAAD_v5",
        "SpoofCeleb", "VoiceMOS", "CVoiceFake_Large", "LibriTTS", "LibriTTS-R", "LibriTTS-Vocoded",
        "LJSpeech", "VoxCeleb2", "VoxCeleb2-Vocoded", "FLEURS", "FLEURS-R", "Codecfake-Xie",
        "CodecFake-Wu", "AIShell3", "CNCeleb2", "MLS", "WaveFake", "FakeOrReal", "FakeOrReal-norm",
        "In-the-Wild", "DeepVoice", "ADD2023", "Deepfake-Eval-2024", "WildSVDD"}
    assert set(CORPORA) == expected
    prefixes = [c.prefix.lower() for c in CORPORA.values()]
    assert len(set(prefixes)) == len(prefixes) and not any("-" in p for p in prefixes)
    assert sum(c.use == "train" for c in CORPORA.values()) == 29
    assert sum(c.use == "test" for c in CORPORA.values()) == 5


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "adf", "prepare", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def test_cli_writes_manifest_report_and_cache(tmp_path):
    egs = tmp_path / "egs"
    write_audio(egs / "real" / "a.wav", 0.2)
    write_audio(egs / "fake" / "b.flac", 0.3, 22050, 2)
    (egs / "fake" / "c.wav").write_bytes(b"garbage")
    write_text(egs / "metadata.csv", "file,label,speaker,split,source,attack,language\n"
               "real/a.wav,real,s1,train,vctk,-,en\nfake/b.flac,fake,s2,valid,vctk,A01,en\n"
               "fake/c.wav,fake,s3,test,vctk,A02,en\nfake/gone.wav,fake,s4,test,vctk,A02,en\n")
    out = tmp_path / "m" / "egs.csv"
    res = _cli("egs", "--root", str(egs), "-o", str(out), "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    df, problems = read_manifest(out)
    assert problems == [] and list(df.columns) == COLUMNS
    assert list(df["ID"]) == ["EGS-real_a", "EGS-fake_b"]
    assert list(df["Path"]) == ["$ROOT/real/a.wav", "$ROOT/fake/b.flac"]
    assert df.loc[1, "AudioChannel"] == 2 and df.loc[1, "SampleRate"] == 22050
    report = dict(line.split("\t") for line in (tmp_path / "m" / "egs.csv.skipped.txt").read_text().splitlines())
    assert report.keys() == {str(egs / "fake" / "c.wav"), str(egs / "fake" / "gone.wav")}
    assert report[str(egs / "fake" / "c.wav")].startswith("cannot decode audio")
    assert report[str(egs / "fake" / "gone.wav")] == "listed in the metadata but the file does not exist"
    assert (tmp_path / "m" / "egs.csv.cache.json").is_file()
    assert _cli("egs", "--root", str(egs), "-o", str(out), "--no-progress", "--strict",
                cwd=tmp_path).returncode == 1


def test_cli_list_and_errors(tmp_path):
    res = _cli("--list", cwd=tmp_path)
    assert res.returncode == 0
    for corpus in CORPORA.values():
        assert any(line.split()[:2] == [corpus.name, corpus.prefix] for line in res.stdout.splitlines())
    detail = _cli("--list", "ASVspoof5", cwd=tmp_path)
    assert "prefix ASV5" in detail.stdout and "first trial of each protocol is kept" in detail.stdout
    described = _cli("--describe", "ASVspoof5", cwd=tmp_path)
    assert described.returncode == 0 and described.stdout == detail.stdout
    bad = _cli("NoSuchCorpus", "--root", str(tmp_path), cwd=tmp_path)
    assert bad.returncode == 2 and "unknown corpus 'NoSuchCorpus'" in bad.stderr
    missing = _cli("LJSpeech", "--root", str(tmp_path), "-o", str(tmp_path / "x.csv"), cwd=tmp_path)
    assert missing.returncode == 2 and "LJSpeech-1.1 does not exist" in missing.stderr
    assert not (tmp_path / "x.csv").exists()
    itw = tmp_path / "In-the-Wild/release_in_the_wild"
    write_text(itw / "meta.csv", "file,speaker\n0.wav,A\n")
    broken = _cli("In-the-Wild", "--root", str(tmp_path), "-o", str(tmp_path / "x.csv"), cwd=tmp_path)
    assert broken.returncode == 2 and f"{itw / 'meta.csv'}: missing column(s) label" in broken.stderr


def test_cli_check_reports_whether_a_corpus_is_present(tmp_path):
    (tmp_path / "LJSpeech" / "LJSpeech-1.1").mkdir(parents=True)
    assert _cli("LJSpeech", "--root", str(tmp_path), "--check", cwd=tmp_path).returncode == 0
    absent = _cli("WaveFake", "--root", str(tmp_path), "--check", cwd=tmp_path)
    assert absent.returncode == 3 and "WaveFake/generated_audio does not exist" in absent.stderr


def test_egs_root_is_found_from_the_working_directory_not_the_package(tmp_path):
    """Installed, the package has no egs_data beside it: the default root is egs_data/
    in the working directory or a folder above it, else a clear error."""
    egs = tmp_path / "project" / "egs_data"
    write_audio(egs / "real" / "a.wav", 0.2)
    write_text(egs / "metadata.csv", "file,label,speaker,split,source,attack,language\n"
                                     "real/a.wav,real,s1,train,x,-,EN\n")
    work = tmp_path / "project" / "recipes" / "x"
    work.mkdir(parents=True)
    res = _cli("egs", "-o", str(tmp_path / "egs.csv"), "--no-progress", cwd=work)
    assert res.returncode == 0, res.stderr
    assert read_manifest(tmp_path / "egs.csv")[0]["ID"].tolist() == ["EGS-real_a"]
    lost = _cli("egs", "-o", str(tmp_path / "lost.csv"), cwd=tmp_path)
    assert lost.returncode == 2 and "no egs_data/" in lost.stderr and "--root" in lost.stderr


def test_docs_corpora_md_is_generated_from_the_preparers():
    """docs/corpora.md is the rendering of the corpus docstrings (tools/make_corpora_doc.py)."""
    from adf.data.prepare import corpora_markdown

    text = corpora_markdown()
    assert (REPO / "docs" / "corpora.md").read_text(encoding="utf-8") == text, \
        "docs/corpora.md is out of date: run python tools/make_corpora_doc.py"
    for corpus in CORPORA.values():
        assert f"| `{corpus.name}` | `{corpus.prefix}` |" in text
        assert corpus.doc.partition("\n")[2].strip() in text
