#!/usr/bin/env python3
"""Build the embedded example corpus `egs_data/` (real vs. fake telephone speech).

Real speech: human voice prompts shipped in Debian packages (five speakers).
Fake speech, three attacks:
  * espeak-ng  - text-to-speech of the same prompt texts (several voices per language),
  * world      - WORLD vocoder copy-synthesis (pyworld) of held-out real clips,
  * griffinlim - Griffin-Lim phase reconstruction (torchaudio) of held-out real clips.

Every clip, real or fake, goes through ONE conditioning chain so that no nuisance
feature (bandwidth, loudness, duration, leading/trailing silence, codec) tells the
classes apart on its own:
  8 kHz mono -> (fakes of a language whose real prompts are GSM-coded: GSM 06.10
  round trip, the channel the real clips went through) -> 50 ms zero lead-in/out ->
  300-3400 Hz telephone band-pass -> trim leading/trailing silence -> crop to the maximum length ->
  RMS of the active speech to one target -> identical silence pad -> 16-bit FLAC.
Espeak clips are then picked by nearest duration to the real clips of their split,
and vocoded clips keep the duration of the real clip they were made from.

Splits are speaker-disjoint: each real speaker (and the vocoded copies of that
speaker) belongs to one split; each espeak voice to one split.

The build is deterministic (seeded) and needs the Debian packages listed in
REAL_SPEAKERS plus espeak-ng and sox; the prompt texts come from the
asterisk-core-sounds-{it,ru,es,fr} documentation packages (downloaded and unpacked
into the work folder when not installed: the es/fr ones conflict with the
es-co/fr-armelle prompt packages and cannot be installed beside them).

    python tools/make_egs_data.py --out egs_data
"""
from __future__ import annotations

import argparse
import csv
import glob
import gzip
import io
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from adf.environment import use_repo_environment  # noqa: E402 - standard library only

use_repo_environment(("numpy", "soundfile", "torch", "torchaudio"))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

SR = 8000
BAND_HZ = (300.0, 3400.0)  # telephone band, applied to every clip
FRAME_S, HOP_S = 0.020, 0.010  # energy frames for the silence trim
TRIM_BELOW_PEAK_DB = 30.0  # a frame is speech if within this of the loudest frame ...
TRIM_ABOVE_FLOOR_DB = 12.0  # ... and this far above the clip's own noise floor
PAD_S = 0.15  # identical zero pad before and after the trimmed speech
FADE_S = 0.010  # fade in/out of the trimmed speech (no clicks at cut points)
MIN_TOTAL_S, MAX_TOTAL_S = 1.5, 3.0  # clip length with the pads
TARGET_RMS_DBFS = -36.0  # RMS of the active speech frames
GL_NFFT, GL_HOP, GL_ITERS = 256, 64, 48

# Real speakers: (speaker id, Debian package, language, glob of the prompts, GSM-coded?, split)
REAL_SPEAKERS = [
    ("it_IT_m_Carlo", "asterisk-core-sounds-it-wav", "IT",
     "/usr/share/asterisk/sounds/it_IT_m_Carlo/*.wav", False, "train"),
    ("ru_RU_f_IvrvoiceRU", "asterisk-core-sounds-ru-wav", "RU",
     "/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU/*.wav", False, "train"),
    ("es_CO_f_Jimenez", "asterisk-prompt-es-co", "ES",
     "/usr/share/asterisk/sounds/es/*.gsm", True, "train"),
    ("fr_FR_f_Armelle", "asterisk-prompt-fr-armelle", "FR",
     "/usr/share/asterisk/sounds/fr/*.gsm", True, "valid"),
    ("it_IT_f_Menardi", "asterisk-prompt-it-menardi-wav", "IT",
     "/usr/share/asterisk/sounds/it_IT_f_Menardi/*.wav", False, "test"),
]
# Per real speaker: clips kept as real, and held-out clips vocoded by each vocoder.
PER_SPEAKER = {"train": (42, 10, 10), "valid": (30, 8, 8), "test": (48, 12, 12)}
# Espeak-ng voices (language voice + variant), each in one split only.
ESPEAK_VOICES = {
    "train": [("it", "m1"), ("it", "f2"), ("ru", "m3"), ("ru", "f1"), ("es", "m2"), ("es-419", "f3")],
    "valid": [("fr", "m4"), ("fr-be", "f4")],
    "test": [("it", "m6"), ("it", "f5"), ("it", "m7")],
}
ESPEAK_LANG = {"it": "IT", "ru": "RU", "es": "ES", "es-419": "ES", "fr": "FR", "fr-be": "FR"}
# Prompt texts (core-sounds-<lang>.txt.gz) come from these documentation packages.
TRANSCRIPT_PKGS = {lang: f"asterisk-core-sounds-{lang.lower()}" for lang in ("IT", "RU", "ES", "FR")}
TOOL_PKGS = ["espeak-ng", "sox"]
COLUMNS = ["file", "label", "speaker", "split", "source", "attack", "language"]


# --------------------------------------------------------------------------- checks
def dpkg_version(pkg):
    """Installed version of a Debian package, or None."""
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", pkg],
                         capture_output=True, text=True)
    if res.returncode != 0 or not res.stdout.startswith("install ok installed"):
        return None
    return res.stdout.split()[-1]


def check_packages():
    """Stop with the apt-get line to run when a needed package is missing."""
    needed = [spk[1] for spk in REAL_SPEAKERS] + TOOL_PKGS
    missing = [p for p in needed if dpkg_version(p) is None]
    if missing:
        sys.exit("missing Debian packages; install them with:\n"
                 f"  apt-get update && apt-get install -y {' '.join(missing)}")
    try:
        load_pyworld()
    except ImportError:
        sys.exit("pyworld is missing; install it with: pip install -r requirements-tools.txt")
    return {p: dpkg_version(p) for p in needed}


def transcripts(lang, workdir):
    """{prompt name: text} of one language from asterisk-core-sounds-<lang>'s core-sounds-<lang>.txt.

    Read from /usr/share/doc when the package is installed, else from its .deb
    (apt-get download + dpkg-deb -x into `workdir`). Bracketed descriptions of
    non-speech sounds ("[ascending tones]") are left out.
    """
    pkg = TRANSCRIPT_PKGS[lang]
    name = f"core-sounds-{lang.lower()}.txt.gz"
    path = f"/usr/share/doc/{pkg}/{name}"
    if not os.path.exists(path):
        root = os.path.join(workdir, pkg)
        os.makedirs(root, exist_ok=True)
        subprocess.run(["apt-get", "download", pkg], cwd=root, check=True, capture_output=True)
        deb = glob.glob(os.path.join(root, f"{pkg}_*.deb"))[0]
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
        path = os.path.join(root, "usr/share/doc", pkg, name)
    texts = {}
    with gzip.open(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            if line.startswith(";") or ":" not in line:
                continue
            key, text = line.split(":", 1)
            text = text.strip()
            if text and not text.startswith("[") and "/" not in key:
                texts[key.strip()] = text
    return texts


# --------------------------------------------------------------------------- audio
def decode(path):
    """A prompt file as float64 mono at 8 kHz (.gsm via sox, the rest via soundfile)."""
    if path.endswith(".gsm"):
        raw = subprocess.run(["sox", "-R", "-D", "-t", "gsm", "-r", str(SR), "-c", "1", path, "-t", "wav", "-b", "16", "-"],
                             capture_output=True, check=True).stdout
        x, sr = sf.read(io.BytesIO(raw))
    else:
        x, sr = sf.read(path)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if sr != SR:
        x = resample(x, sr)
    return x


def resample(x, sr, target_sr=SR):
    """Resample (to 8 kHz by default) with the project's resampler (adf.audio.resample)."""
    import torch
    from adf.audio import resample as adf_resample

    return adf_resample(torch.from_numpy(np.asarray(x, dtype=np.float32)), sr, target_sr).double().numpy()


def gsm_round_trip(x):
    """Encode and decode with GSM 06.10 (sox): the channel of the GSM-coded real prompts.

    The input is scaled to a peak of 0.5 first, so its 16-bit copy neither clips nor
    wastes resolution (the level is normalised later anyway).
    """
    pcm = io.BytesIO()
    sf.write(pcm, x / (np.abs(x).max() + 1e-9) * 0.5, SR, format="WAV", subtype="PCM_16")
    gsm = subprocess.run(["sox", "-R", "-D", "-t", "wav", "-", "-t", "gsm", "-"], input=pcm.getvalue(),
                         capture_output=True, check=True).stdout
    raw = subprocess.run(["sox", "-R", "-D", "-t", "gsm", "-r", str(SR), "-c", "1", "-", "-t", "wav", "-b", "16", "-"],
                         input=gsm, capture_output=True, check=True).stdout
    return sf.read(io.BytesIO(raw))[0]


def frame_db(x):
    """Energy (dB) of 20 ms frames every 10 ms."""
    frame, hop = int(FRAME_S * SR), int(HOP_S * SR)
    if len(x) < frame:
        return np.full(1, -120.0)
    idx = np.arange(0, len(x) - frame + 1, hop)[:, None] + np.arange(frame)[None, :]
    return 10 * np.log10(np.mean(x[idx] ** 2, axis=1) + 1e-12)


def speech_frames(db):
    """Frames within TRIM_BELOW_PEAK_DB of the peak and TRIM_ABOVE_FLOOR_DB above the floor."""
    floor = np.percentile(db, 5)
    return db > max(db.max() - TRIM_BELOW_PEAK_DB, floor + TRIM_ABOVE_FLOOR_DB)


def condition(x):
    """The chain every clip goes through; returns the stored waveform or None if too short."""
    from scipy.signal import butter, sosfiltfilt

    pad = int(PAD_S * SR)
    if len(x) + 2 * pad < int(MIN_TOTAL_S * SR):
        return None
    # Some prompts start or end right at their first/last sample: give every clip the same
    # 50 ms of zeros first, so the trim margin and the fades never cut into speech.
    x = np.concatenate([np.zeros(int(0.05 * SR)), x, np.zeros(int(0.05 * SR))])
    sos = butter(4, BAND_HZ, btype="bandpass", fs=SR, output="sos")
    x = sosfiltfilt(sos, x)
    active = speech_frames(frame_db(x))
    if not active.any():
        return None
    hop, frame = int(HOP_S * SR), int(FRAME_S * SR)
    first, last = np.flatnonzero(active)[[0, -1]]
    # Keep a fade-long margin on each side, so the fades leave the speech frames intact.
    fade = int(FADE_S * SR)
    x = x[max(first * hop - fade, 0): last * hop + frame + fade]
    x = x[: int(MAX_TOTAL_S * SR) - 2 * pad]
    if len(x) + 2 * pad < int(MIN_TOTAL_S * SR):
        return None
    ramp = np.linspace(0.0, 1.0, fade)
    x = x.copy()
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    db = frame_db(x)
    active_rms = np.sqrt(np.mean(10 ** (db[speech_frames(db)] / 10)))
    x = x * (10 ** (TARGET_RMS_DBFS / 20) / active_rms)
    return np.concatenate([np.zeros(pad), x, np.zeros(pad)])


# --------------------------------------------------------------------------- generators
def load_pyworld():
    """The pyworld module; pyworld 0.3.5 (the newest release) imports pkg_resources in its
    __init__ only to read its own version, and setuptools >= 81 no longer ships
    pkg_resources, so fall back to loading its compiled extension directly."""
    try:
        import pyworld
        return pyworld
    except ModuleNotFoundError as err:
        if err.name != "pkg_resources":
            raise
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("pyworld")
    so = glob.glob(os.path.join(spec.submodule_search_locations[0], "pyworld*.so"))[0]
    loader = importlib.machinery.ExtensionFileLoader("pyworld", so)
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location("pyworld", so, loader=loader))
    loader.exec_module(module)
    return module


def espeak(text, lang, variant, speed, pitch):
    """espeak-ng speech of `text` at 8 kHz."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", f"{lang}+{variant}", "-s", str(speed), "-p", str(pitch),
                        "-w", tmp.name, text], check=True, capture_output=True)
        x, sr = sf.read(tmp.name)
    return resample(x, sr)


def world_resynth(x):
    """WORLD analysis (DIO + StoneMask F0, CheapTrick envelope, D4C aperiodicity) and synthesis.

    Runs at 16 kHz: D4C measures aperiodicity in 3 kHz bands below fs/2 - 3 kHz,
    which leaves no band at 8 kHz and turns every frame into noise.
    """
    pyworld = load_pyworld()
    wide = 2 * SR
    x16 = np.ascontiguousarray(resample(x, SR, wide), dtype=np.float64)
    f0, t = pyworld.dio(x16, wide)
    f0 = pyworld.stonemask(x16, f0, t, wide)
    sp = pyworld.cheaptrick(x16, f0, t, wide)
    ap = pyworld.d4c(x16, f0, t, wide)
    return resample(pyworld.synthesize(f0, sp, ap, wide), wide)[: len(x)]


def world_resynth_fresh(waves):
    """world_resynth of each wave, each in a fresh process.

    WORLD's D4C adds tiny safeguard noise from a process-global random state that
    is never reset, and that noise can flip a frame's aperiodicity decision: the
    same input gives different output depending on what ran before in the process.
    A new process per clip starts from the same state every time.
    """
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2, maxtasksperchild=1) as pool:
        return pool.map(world_resynth, waves, chunksize=1)


def griffinlim_resynth(x, seed):
    """Magnitude STFT -> Griffin-Lim phase reconstruction (torchaudio), random initial phase."""
    import torch
    import torchaudio

    torch.manual_seed(seed)
    wav = torch.from_numpy(np.asarray(x, dtype=np.float32))
    spec = torchaudio.transforms.Spectrogram(n_fft=GL_NFFT, hop_length=GL_HOP, power=1.0)(wav)
    gl = torchaudio.transforms.GriffinLim(n_fft=GL_NFFT, hop_length=GL_HOP, power=1.0, n_iter=GL_ITERS)
    return gl(spec).double().numpy()[: len(x)]


# --------------------------------------------------------------------------- build
def build(out, seed, workdir):
    """Make every clip, then write `out` (audio/<split>/*.flac, metadata.csv) via a temp folder."""
    versions = check_packages()
    rng = np.random.default_rng(seed)
    texts = {lang: transcripts(lang, workdir) for lang in TRANSCRIPT_PKGS}
    rows, clips = [], {}

    def add(split, label, speaker, source, attack, lang, name, wav):
        kind = "real" if attack == "-" else attack.replace("-", "")
        rel = f"audio/{split}/{speaker}_{kind}_{name}.flac"
        assert rel not in clips, rel
        clips[rel] = wav
        rows.append({"file": rel, "label": label, "speaker": speaker, "split": split,
                     "source": source, "attack": attack, "language": lang})

    real_durs = {split: [] for split in PER_SPEAKER}
    for speaker, pkg, lang, pattern, gsm, split in REAL_SPEAKERS:
        n_real, n_world, n_gl = PER_SPEAKER[split]
        files = sorted(glob.glob(pattern))
        order = rng.permutation(len(files))
        usable = []  # (prompt name, decoded audio, conditioned audio)
        for i in order:
            raw = decode(files[i])
            cond = condition(raw)
            if cond is not None:
                usable.append((os.path.splitext(os.path.basename(files[i]))[0], raw, cond))
            if len(usable) == n_real + n_world + n_gl:
                break
        if len(usable) < n_real + n_world + n_gl:
            sys.exit(f"{speaker}: only {len(usable)} usable prompts")
        for name, _, cond in usable[:n_real]:
            add(split, "real", speaker, pkg, "-", lang, name, cond)
            real_durs[split].append(len(cond) / SR)
        vocoded = [("world", "pyworld", usable[n_real: n_real + n_world]),
                   ("griffinlim", "torchaudio", usable[n_real + n_world:])]
        for attack, source, chosen in vocoded:
            raws = [raw for _, raw, _ in chosen]
            if attack == "world":
                fakes = world_resynth_fresh(raws)
            else:
                fakes = [griffinlim_resynth(raw, seed * 100003 + k) for k, raw in enumerate(raws)]
            for (name, _, _), fake in zip(chosen, fakes):
                if gsm:
                    fake = gsm_round_trip(fake)
                cond = condition(fake)
                if cond is None:
                    sys.exit(f"{speaker}: vocoded {name} became too short")
                add(split, "fake", speaker, source, attack, lang, name, cond)
        print(f"{speaker}: {n_real} real, {n_world} world, {n_gl} griffinlim", flush=True)

    gsm_langs = {spk[2] for spk in REAL_SPEAKERS if spk[4]}
    for split, voices in ESPEAK_VOICES.items():
        n_real, n_world, n_gl = PER_SPEAKER[split]
        n_speakers = sum(spk[5] == split for spk in REAL_SPEAKERS)
        n_espeak = n_speakers * (n_real - n_world - n_gl)
        # Candidates: every voice reads a shuffled share of its language's prompts.
        cands = {v: [] for v in voices}
        for voice in voices:
            lang = ESPEAK_LANG[voice[0]]
            names = sorted(texts[lang])
            for i in rng.permutation(len(names))[: 4 * n_espeak // len(voices)]:
                speed, pitch = int(rng.integers(140, 186)), int(rng.integers(30, 71))
                wav = espeak(texts[lang][names[i]], voice[0], voice[1], speed, pitch)
                if lang in gsm_langs:
                    wav = gsm_round_trip(wav)
                cond = condition(wav)
                if cond is not None:
                    cands[voice].append((names[i], cond))
        # Duration matching: each target duration drawn from the split's real clips
        # takes the nearest unused candidate of the next voice in turn.
        targets = rng.choice(real_durs[split], size=n_espeak, replace=False)
        for k, target in enumerate(targets):
            voice = voices[k % len(voices)]
            pool = cands[voice]
            j = int(np.argmin([abs(len(c) / SR - target) for _, c in pool]))
            name, cond = pool.pop(j)
            add(split, "fake", f"espeak_{voice[0].replace('-', '')}_{voice[1]}", "espeak-ng", "espeak-ng",
                ESPEAK_LANG[voice[0]], name, cond)
        print(f"{split}: {n_espeak} espeak-ng clips from {len(voices)} voices", flush=True)

    tmp_out = out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp_out, ignore_errors=True)
    for rel, wav in clips.items():
        path = os.path.join(tmp_out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        peak = np.abs(wav).max()
        if peak >= 1.0:
            sys.exit(f"{rel}: clips at the loudness target (peak {peak:.2f})")
        sf.write(path, wav, SR, format="FLAC", subtype="PCM_16", compression_level=1.0)
    rows.sort(key=lambda r: r["file"])
    with open(os.path.join(tmp_out, "metadata.csv"), "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    # Keep hand-written files (README.md) of an existing corpus folder.
    if os.path.isdir(out):
        for keep in ("README.md",):
            if os.path.exists(os.path.join(out, keep)):
                shutil.copy(os.path.join(out, keep), os.path.join(tmp_out, keep))
        shutil.rmtree(out)
    os.rename(tmp_out, out)
    print(f"wrote {len(rows)} clips to {out}")
    print("package versions: " + ", ".join(f"{p} {v}" for p, v in sorted(versions.items())))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="egs_data", help="output folder (replaced)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, repo)  # adf.audio
    with tempfile.TemporaryDirectory() as workdir:
        build(args.out, args.seed, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
