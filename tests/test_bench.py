"""The benchmarks' own arithmetic and their smoke runs (tiny model, seconds)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from adf.models.classifier import build_classifier
from bench.common import model_flops

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("mode", ["layer_norm", "group_norm"])
@pytest.mark.parametrize("n", [400, 5000, 16000])
def test_model_flops_match_torch_flop_counter(mode, n):
    """The analytic count equals torch's own count of the convs and matmuls, plus
    the two attention products (torch does not count the CPU flash-attention kernel)."""
    model = build_classifier("tiny", extractor_mode=mode).eval()
    model.fast_frontend = False  # count torchaudio's conv modules, independently of the fast path
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, n))
    frames = model.frames(torch.randn(1, n))[0].shape[1]
    cfg = model.config
    attention = cfg["encoder_num_layers"] * 2 * 2 * frames * frames * cfg["encoder_embed_dim"]
    assert model_flops(cfg, n) == counter.get_total_flops() + attention


def test_infer_bench_smoke(tmp_path):
    env = {"OUT": str(tmp_path), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "bench/infer.py", "--models", "tiny", "--clips", "4",
                          "--repeats", "1", "--batch-size", "4", "--pipeline", "tiny", "--startup", "",
                          "--memory", ""], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    infer = [r for r in lines if r["kind"] == "infer"]
    assert len(infer) == 6 and all(r["x_realtime"] > 0 for r in infer)
    assert sum(1 for line in run.stdout.splitlines() if line.startswith("BENCH infer")) == 6
    same_weights = next(r for r in lines if r["kind"] == "check")
    assert same_weights["value"] < 1e-4  # adf and transformers run the same network
    invariance = [r for r in lines if r.get("what") == "padding_invariance"]
    assert invariance[0]["max_dlogit"] < 1e-5  # fp32: batching changes nothing
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
    eager (with each convolution path) and compiled, with a profile of each variant."""
    env = {"OUT": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    run = subprocess.run(["bash", "bench/gpu.sh", "--dry"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    checks = [r for r in lines if r["kind"] == "check"]
    assert all(r["ok"] for r in checks) and any("convs vs torchaudio" in r["what"] for r in checks)
    for kind in ("infer", "train"):
        rows = {(r["variant"], r["convs"]): r for r in lines if r["kind"] == kind}
        assert set(rows) == {("eager", "default"), ("eager", "adf_nhwc"), ("eager", "torchaudio"),
                             ("compiled", "default")}
        assert rows["compiled", "default"]["compile_s"] > 0
        assert all(r["x_realtime"] > 0 and 0 < r["mfu"] < 1 for r in rows.values())
    (optimizer,) = [r for r in lines if r["kind"] == "optimizer"]  # eager only
    assert optimizer["default_s"] > 0 and optimizer["fused_s"] > 0
    profiles = [r for r in lines if r["kind"] == "profile"]
    assert len(profiles) == 8
    for p in profiles:
        shares = sum(v for k, v in p.items() if k.startswith("share_"))
        assert shares == pytest.approx(1.0, abs=0.01) and 0 < p["busy_share"] < 1.5 and p["share_gemm"] > 0
    assert len(list(tmp_path.glob("profile_*.txt"))) == 8


def test_overhead_bench_smoke(tmp_path):
    env = {"OUT": str(tmp_path), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "bench/overhead.py", "--models", "tiny", "--repeats", "2"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    row = next(json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()
               if json.loads(line)["kind"] == "overhead")
    assert row["layers"] == build_classifier("tiny").config["encoder_num_layers"]
    assert row["eager_ms"] > 0 and row["compiled_ms"] > 0


def test_train_bench_smoke(tmp_path):
    """bench/train.py on the tiny model: one training line (throughput, padding of
    the dynamic batches) and the AdamW default-vs-fused line."""
    env = {"OUT": str(tmp_path), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
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
    env = {"OUT": str(tmp_path / "out"), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "bench/infer.py", "--no-throughput", "--startup", "", "--memory", "",
                          "--pipeline", "", "--models", "tiny", "--workers", "0", "--agreement",
                          str(tmp_path / "metadata.csv"), "--agreement-sources"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = {r["run"]: r for r in map(json.loads, (tmp_path / "out" / "bench.jsonl").read_text().splitlines())
            if r["kind"] == "agree"}
    groups = {"all_weights", "biases", "cnn_kernels", "matrices", "norms", "positional_conv"}
    assert set(rows) == {"bf16", "autocast"} | {f"fp32_with_{g}_rounded" for g in groups}
    for r in rows.values():
        assert r["files"] == 6 and 0 <= r["swapped_pairs"] <= 9
        assert 0 <= r["median_dprob"] <= r["max_dprob"] < 0.1
        assert r["eer_diff_points"] == abs(r["eer"] - r["eer_fp32"])
    assert rows["bf16"]["max_dprob"] > 0  # bf16 does change the scores a little


def test_the_whole_harness_runs_from_one_command_and_reports_a_failed_part(tmp_path):
    """bench/run.sh --quick runs every benchmark script; a part that fails (here the
    merge benchmark, made to fail by a wrapper interpreter) is named and the exit
    status is 1, while every other part still runs and reports."""
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *bench/merge.py*) exit 3 ;; esac\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    out = tmp_path / "out"
    env = {"OUT": str(out), "PYTHON": str(wrapper), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(["bash", "bench/run.sh", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "bench/run.sh: failed: merge" in run.stdout and "== merge FAILED (exit 3)" in run.stdout
    rows = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    kinds = {r["kind"] for r in rows}
    assert {"infer", "agree", "pipeline", "startup", "memory", "train", "optimizer", "overhead", "score",
            "headers"} <= kinds and "merge" not in kinds
    assert (out / "bench.log").read_text().count("== ") >= 8
    score = {r["what"]: r for r in rows if r["kind"] == "score"}
    assert score["naive_iterrows_extrapolated"]["agrees"] and score["eer_mindcf_auc"]["wall_s"] > 0
    headers = {r["mode"]: r for r in rows if r["kind"] == "headers"}
    assert set(headers) == {"serial", "parallel", "parallel_writing_cache", "from_cache"}
    assert all(r["files"] == 300 and r["files_per_s"] > 0 for r in headers.values())


def test_merge_bench_reports_rows_and_planted_problems(tmp_path):
    env = {"OUT": str(tmp_path), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "bench/merge.py", "--rows", "3400"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (row,) = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    # 34 manifests of 100 rows, each with 3 appended copies (2 identical: dropped, 1 conflicting)
    # and one bad duration: the conflicting pair and the bad row are reported
    assert row["manifests"] == 34 and row["rows"] == 34 * 103
    assert row["problems"] >= 34 * 2
    assert row["train_rows"] + row["valid_rows"] + row["test_rows"] <= 34 * 100
