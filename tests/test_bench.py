"""The benchmarks' own arithmetic and their smoke runs (tiny model, seconds)."""
import json
import os
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from adf.models.classifier import build_classifier
from adf.models.conv_paths import ConvPaths, Frontend
from bench.common import model_flops
from tests.synth import ROOT

# What a bench subprocess inherits besides its own settings: the CPU-capability
# caps (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 approximate an AVX2-only
# CPU on a newer one) and the thread count.
PASSED_ON = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS", "ADF_CACHE_DIR")


def bench_env(**settings):
    env = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    return {"PATH": "/usr/bin:/bin", **env, **{k: str(v) for k, v in settings.items()}}


@pytest.mark.parametrize("mode", ["layer_norm", "group_norm"])
@pytest.mark.parametrize("n", [400, 5000, 16000])
def test_model_flops_match_torch_flop_counter(mode, n):
    """The analytic count equals torch's own count of the convs and matmuls, plus
    the two attention products (torch does not count the CPU flash-attention kernel)."""
    model = build_classifier("tiny", extractor_mode=mode).eval()
    model.set_conv_paths(ConvPaths(Frontend.REFERENCE))  # count torchaudio's conv modules, not the fast path's
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, n))
    frames = model.frames(torch.randn(1, n))[0].shape[1]
    cfg = model.config
    attention = cfg["encoder_num_layers"] * 2 * 2 * frames * frames * cfg["encoder_embed_dim"]
    assert model_flops(cfg, n) == counter.get_total_flops() + attention


def test_infer_bench_smoke(tmp_path):
    env = bench_env(OUT=tmp_path, PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, "bench/infer.py", "--models", "tiny", "--clips", "4",
                          "--repeats", "1", "--batch-size", "4", "--pipeline", "tiny", "--startup", "",
                          "--memory", ""], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    (cpu,) = [r for r in lines if r["kind"] == "precision"]
    infer = {(r["impl"], r["precision"], r["batch"]) for r in lines if r["kind"] == "infer"}
    expected = {("hf", "fp32", 1), ("adf", "fp32", 1), ("adf", "fp32", 4), ("adf", "int8", 1), ("adf", "int8", 4),
                ("adf-onnxruntime", "fp32", 1), ("adf-onnxruntime", "fp32", 4)}
    if cpu["native_bf16"]:  # bf16 is timed only where the CPU computes it natively
        expected |= {("adf-autocast", "bf16", 1), ("adf", "bf16", 1), ("adf", "bf16", 4)}
    assert infer == expected
    assert all(r["x_realtime"] > 0 and r["mfu"] > 0 for r in lines if r["kind"] == "infer")
    # the fp32 ceiling: the baseline's CPU time over the time at the GEMM peak, and its inverse
    (ceiling,) = [r for r in lines if r["kind"] == "ceiling"]
    hf = next(r for r in lines if r["kind"] == "infer" and r["impl"] == "hf")
    assert ceiling["ceiling_vs_hf_cpu"] * ceiling["hf_fraction_of_limit"] == pytest.approx(1)
    assert ceiling["hf_fraction_of_limit"] == pytest.approx(hf["mfu_cpu"])
    assert sum(1 for line in run.stdout.splitlines() if line.startswith("BENCH infer")) == len(expected)
    same_weights = next(r for r in lines if r["kind"] == "check")
    assert same_weights["value"] < 1e-4  # adf and transformers run the same network
    invariance = {r["run"]: r for r in lines if r.get("what") == "padding_invariance"}
    assert invariance["fp32_b4"]["max_dlogit"] < 1e-5  # fp32: batching changes nothing
    # int8 quantizes activations per batch, so batch-mates move its scores a little
    assert invariance["int8_b4"]["max_dlogit"] < 0.05
    agree = {r["run"]: r for r in lines if r["kind"] == "agree" and "what" not in r}
    assert agree["int8_b1"]["median_dprob"] <= 0.01 and agree["int8_b1"]["max_dlogit"] > 0
    # the ONNX Runtime engine computes the fp32 model: same logits up to rounding, alone and batched
    assert agree["onnxruntime_b1"]["max_dlogit"] < 1e-4 and agree["onnxruntime_b4"]["max_dlogit"] < 1e-4
    assert invariance["onnxruntime_b4"]["max_dlogit"] < 1e-5
    kinds = {r["kind"]: r for r in lines}
    assert kinds["pipeline"]["files"] == 4 and 0 <= kinds["pipeline"]["wait_share"] < 1


def _rss_gib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 2**20


def test_memory_probe_measures_the_child_not_its_parent(tmp_path):
    """The detect probe's peak is the child's own: Linux carries getrusage's
    ru_maxrss over exec, which once made xlsr_2b look 2.14x its bf16 weights
    when the real peak was 1.22x."""
    from bench.infer import run_detect, write_fixture

    ckpt, clip, _ = write_fixture(str(tmp_path), "tiny")
    ballast = torch.ones(256 * 2**20)  # 1 GiB the parent touches, the child never does
    parent = _rss_gib()
    probe, _ = run_detect(["--ckpt", ckpt, "-o", "s.csv", "--workers", "0", clip], str(tmp_path))
    assert ballast.sum() > 0
    assert probe["rss_before_load_gib"] <= probe["peak_rss_gib"] < parent - 0.8, (probe, parent)


@pytest.mark.parametrize("kernel, kind", [
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1", "gemm"),
    ("nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_NNT", "gemm"),
    ("aten::addmm", "gemm"),
    ("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nwc", "conv"),
    ("fmha_cutlassF_bf16_aligned_64x64_rf_sm80", "attention"),
    ("triton_per_fused_add_native_layer_norm_0", "triton_fused"),
    ("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16, float>", "norm"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl>", "elementwise"),
    ("Memcpy HtoD (Pageable -> Device)", "copy_cast"),
    ("void at::native::multi_tensor_apply_kernel<FusedAdamMathFunctor>", "optimizer"),
    ("ncclDevKernel_AllReduce_Sum_f32_RING_LL", "communication"),
    ("aten::empty", "other"),
])
def test_profile_categories(kernel, kind):
    from bench.profiling import category

    assert category(kernel) == kind


def test_gpu_bench_dry_run(tmp_path):
    """bench/gpu.sh --dry: the GPU script's code path on the CPU with the tiny model,
    eager with each convolution path, with a profile of each variant; in bf16
    where the CPU computes it natively, else fp32, with MFU against the measured
    peak of that dtype. (torch.compile's variant is left out: compiling costs
    about a minute on two cores, and tests/test_compile.py covers compile_layers.)"""
    env = bench_env(OUT=tmp_path, PYTHON=sys.executable)
    run = subprocess.run(["bash", "bench/gpu.sh", "--dry", "--no-compile"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    (peak,) = [r for r in lines if r["kind"] == "peak"]
    assert peak["precision"] in ("fp32", "bf16") and peak["tflops"] > 0
    checks = [r for r in lines if r["kind"] == "check"]
    assert all(r["ok"] for r in checks) and any("convs vs torchaudio" in r["what"] for r in checks)
    for kind in ("infer", "train"):
        rows = {(r["variant"], r["convs"]): r for r in lines if r["kind"] == kind}
        assert set(rows) == {("eager", "default"), ("eager", "adf_nhwc"), ("eager", "torchaudio")}
        assert all(r["precision"].startswith(peak["precision"]) for r in rows.values())
        # mfu > 0 only: on a shared CPU the peak (best of a few seconds) and the
        # model's time are taken under different load, so the ratio can pass 1
        assert all(r["x_realtime"] > 0 and r["mfu"] > 0 for r in rows.values())
    (optimizer,) = [r for r in lines if r["kind"] == "optimizer"]  # eager only
    assert optimizer["default_s"] > 0 and optimizer["fused_s"] > 0
    profiles = [r for r in lines if r["kind"] == "profile"]
    assert len(profiles) == 6
    for p in profiles:
        shares = sum(v for k, v in p.items() if k.startswith("share_"))
        assert shares == pytest.approx(1.0, abs=0.01) and 0 < p["busy_share"] < 1.5 and p["share_gemm"] > 0
    assert len(list(tmp_path.glob("profile_*.txt"))) == 6


def test_overhead_bench_smoke(tmp_path):
    env = bench_env(OUT=tmp_path, PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, "bench/overhead.py", "--models", "tiny", "--repeats", "2", "--no-compile"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    row = next(json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()
               if json.loads(line)["kind"] == "overhead")
    assert row["layers"] == build_classifier("tiny").config["encoder_num_layers"]
    assert row["eager_ms"] > 0  # (the compiled side compiles for a minute: measured, not tested)


def test_train_bench_smoke(tmp_path):
    """bench/train.py on the tiny model: one training line (throughput, padding of
    the dynamic batches) and the AdamW default-vs-fused line."""
    env = bench_env(OUT=tmp_path, PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, "bench/train.py", "--models", "tiny", "--steps", "1", "--files", "12",
                          "--workers", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = {r["kind"]: r for r in map(json.loads, (tmp_path / "bench.jsonl").read_text().splitlines())}
    train, optimizer = rows["train"], rows["optimizer"]
    assert train["model"] == "tiny" and train["steps"] == 1 and train["x_realtime"] > 0
    assert train["batch_seconds"] == 40.0 and 0 <= train["padding"] < 1 and train["batches_per_epoch"] >= 1
    assert optimizer["default_s"] > 0 and optimizer["fused_s"] > 0


@pytest.mark.parametrize("mode", ["layer_norm", "group_norm"])
def test_parameter_groups_follow_the_module_types(mode):
    from bench.infer import parameter_group

    model = build_classifier("tiny", extractor_mode=mode)
    for module_name, module in model.backbone.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            group = parameter_group(f"backbone.{module_name}.{name}")
            assert (group == "norms") == isinstance(module, (torch.nn.LayerNorm, torch.nn.GroupNorm)), name
            if group != "norms" and isinstance(module, torch.nn.Linear):
                assert group == ("biases" if name == "bias" else "matrices")


def test_agreement_bench_on_real_files(tmp_path):
    """--agreement with --agreement-sources: bf16 against fp32 on a metadata CSV, then
    each parameter group rounded alone, and autocast; pair counts bounded by the data."""
    import soundfile as sf

    rows = ["file,label,split"]
    for i in range(6):
        sf.write(tmp_path / f"c{i}.wav", 0.1 * torch.randn(8000 + 2000 * i).numpy(), 16000)
        rows.append(f"c{i}.wav,{('real', 'fake')[i % 2]},test")
    (tmp_path / "metadata.csv").write_text("\n".join(rows) + "\n")
    env = bench_env(OUT=tmp_path / "out", PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, "bench/infer.py", "--no-throughput", "--startup", "", "--memory", "",
                          "--pipeline", "", "--models", "tiny", "--workers", "0", "--agreement",
                          str(tmp_path / "metadata.csv"), "--agreement-sources", "--bf16"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = {r["run"]: r for r in map(json.loads, (tmp_path / "out" / "bench.jsonl").read_text().splitlines())
            if r["kind"] == "agree"}
    groups = {"all_weights", "biases", "cnn_kernels", "matrices", "norms", "positional_conv"}
    assert set(rows) == {"int8", "bf16", "autocast"} | {f"fp32_with_{g}_rounded" for g in groups}
    for r in rows.values():
        assert r["files"] == 6 and 0 <= r["swapped_pairs"] <= 9
        assert 0 <= r["median_dprob"] <= r["max_dprob"] < 0.1
        assert r["eer_diff_points"] == abs(r["eer"] - r["eer_fp32"])
    assert rows["bf16"]["max_dprob"] > 0 and rows["int8"]["max_dprob"] > 0  # both change the scores a little


# Stands in for the interpreter in the harness test: records each bench script's
# command line as a BENCH line instead of running it (each script has its own
# smoke test), and fails the merge part.
_STUB = """import json, os, sys
script = next((a for a in sys.argv[1:] if a.startswith("bench/")), None)
if script is None:  # not a bench script (run.sh's CUDA probe): the real interpreter
    os.execv({python!r}, [{python!r}] + sys.argv[1:])
if script == "bench/merge.py":
    sys.exit(3)
row = {{"kind": "stub", "script": script, "args": " ".join(sys.argv[sys.argv.index(script) + 1:])}}
print("BENCH stub", row["script"])
with open(os.path.join(os.environ["OUT"], "bench.jsonl"), "a") as fh:
    fh.write(json.dumps(row) + "\\n")
"""


def test_the_whole_harness_runs_from_one_command_and_reports_a_failed_part(tmp_path):
    """bench/run.sh --quick runs every benchmark script, collecting their BENCH
    lines in one bench.jsonl; a part that fails (here the merge benchmark) is
    named and the exit status is 1, while every other part still runs."""
    stub = tmp_path / "stub.py"
    stub.write_text(_STUB.format(python=sys.executable))
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {stub} "$@"\n')
    wrapper.chmod(0o755)
    out = tmp_path / "out"
    run = subprocess.run(["bash", "bench/run.sh", "--quick"], cwd=ROOT, env=bench_env(OUT=out, PYTHON=wrapper),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "bench/run.sh: failed: merge" in run.stdout and "== merge FAILED (exit 3)" in run.stdout
    rows = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    scripts = [r["script"] for r in rows]
    assert scripts == ["bench/infer.py", "bench/infer.py", "bench/train.py", "bench/overhead.py",
                       "bench/score.py", "bench/prepare_headers.py", "bench/systems.py", "bench/serve.py",
                       "bench/onnx_vs_adf.py", "bench/gpu.py"]
    assert "--agreement egs_data/metadata.csv" in rows[1]["args"] and "--dry" in rows[-1]["args"]
    assert (out / "bench.log").read_text().count("== ") >= 8


def test_score_bench_smoke(tmp_path):
    run = subprocess.run([sys.executable, "bench/score.py", "--n", "100000", "--subsets", "4", "--naive-n", "1000"],
                         cwd=ROOT, env=bench_env(OUT=tmp_path, PYTHONPATH=ROOT), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    score = {r["what"]: r for r in map(json.loads, (tmp_path / "bench.jsonl").read_text().splitlines())}
    assert score["naive_iterrows_extrapolated"]["agrees"] and score["eer_mindcf_auc"]["wall_s"] > 0


def test_headers_bench_smoke(tmp_path):
    run = subprocess.run([sys.executable, "bench/prepare_headers.py", "--files", "300"], cwd=ROOT,
                         env=bench_env(OUT=tmp_path, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    headers = {r["mode"]: r for r in map(json.loads, (tmp_path / "bench.jsonl").read_text().splitlines())}
    assert set(headers) == {"serial", "parallel", "parallel_writing_cache", "from_cache"}
    assert all(r["files"] == 300 and r["files_per_s"] > 0 for r in headers.values())


def test_merge_bench_reports_rows_and_planted_problems(tmp_path):
    env = bench_env(OUT=tmp_path, PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, "bench/merge.py", "--rows", "3400"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (row,) = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    # 34 manifests of 100 rows, each with 3 appended copies (2 identical: dropped, 1 conflicting)
    # and one bad duration: the conflicting pair and the bad row are reported
    assert row["manifests"] == 34 and row["rows"] == 34 * 103
    assert row["problems"] >= 34 * 2
    assert row["train_rows"] + row["valid_rows"] + row["test_rows"] <= 34 * 100
