"""The PyTorch baseline of scripts/cpu-bench.sh: diffusers' UNet2DModel forward-pass latency on
the CPU, measured the way native/bench/bench_unet measures cm4j (same config, same inputs,
one warm-up pass, then the best of --iters passes).

Run with Debian's python after scripts/cpu-baseline-setup.sh:
    PYTHONPATH=.baseline /usr/bin/python3 scripts/cpu_baseline.py \
        [--config FILE] [--dtype fp32,bf16] [--batch 1,4] [--threads 1,2] [--iters N]

Weights are PyTorch's default initialisation under torch.manual_seed(0) (latency does not
depend on their values). bf16 is `model.to(torch.bfloat16)` with bf16 inputs. Prints one line
per (dtype, threads, batch), each a `cpu_baseline` tag followed by key=value fields:
    cpu_baseline dtype=fp32 threads=2 batch=4 iters=2 s_pass=... s_image=... images_s=...
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "..", "shared", "golden", "imagenet64", "config.json")
DTYPES = ("fp32", "bf16")


def int_list(text):
    values = [int(v) for v in text.split(",") if v]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,4, found {text!r}")
    return values


def dtype_list(text):
    values = [v for v in text.split(",") if v]
    bad = [v for v in values if v not in DTYPES]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"expected dtypes from {','.join(DTYPES)}, found {text!r}")
    return values


def blas_library():
    """The BLAS library this process loaded (PyTorch's fp32 matmuls, attention included, and
    its small convolutions run on it): Debian's libblas.so.3 alternative. Debian's reference
    BLAS (/usr/lib/x86_64-linux-gnu/blas/) is an order of magnitude slower than OpenBLAS."""
    with open("/proc/self/maps") as f:
        paths = sorted({line.split()[-1] for line in f if "blas" in line.split()[-1]})
    # The alternative's libblas.so.3 may be a wrapper of the real library (libopenblasp-*.so).
    named = [p for p in paths if not os.path.basename(p).startswith(("libblas.", "liblapack."))]
    path = (named or paths or ["none"])[0]
    return os.path.basename(path) + (" (reference BLAS)" if "/blas/" in path else "")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=os.path.normpath(DEFAULT_CONFIG),
                   help="UNet2DModel config.json (default: ../shared/golden/imagenet64)")
    p.add_argument("--dtype", type=dtype_list, default=["fp32"], help="fp32, bf16 or fp32,bf16")
    p.add_argument("--batch", type=int_list, default=[1, 4], help="batch sizes, e.g. 1,4")
    p.add_argument("--threads", type=int_list, default=[os.cpu_count() or 1],
                   help="torch.set_num_threads values, e.g. 1,2 (default: one per core)")
    p.add_argument("--iters", type=int, default=2, help="timed passes after the warm-up")
    args = p.parse_args()
    if args.iters < 1:
        p.error("--iters must be at least 1")
    return args


def load_model(config_path, tool):
    """diffusers' UNet2DModel of the config, with PyTorch's default initialisation under
    torch.manual_seed(0); exits with a message starting with `tool` when the baseline does not
    import or the config cannot be read."""
    try:
        import torch
        from diffusers import UNet2DModel
    except ImportError as e:
        sys.exit(f"{tool}: {e} (run scripts/cpu-baseline-setup.sh, then this script with "
                 f"PYTHONPATH=.baseline /usr/bin/python3)")
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"{tool}: cannot read the config {config_path}: {e}")
    torch.manual_seed(0)
    return UNet2DModel.from_config(config).eval()


def report(tool, out, fields):
    """One result line, `tool key=value ...`, after checking the pass's output is finite (a
    broken baseline must not pass for a fast one)."""
    import torch
    if not torch.isfinite(out.float()).all():
        sys.exit(f"{tool}: non-finite output at " + " ".join(f"{k}={v}" for k, v in fields.items()))
    print(tool, " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


def main():
    args = parse_args()
    model = load_model(args.config, "cpu_baseline")
    import torch
    n_params = sum(p.numel() for p in model.parameters())
    print(f"# torch {torch.__version__}, BLAS {blas_library()}, config {args.config}, "
          f"{n_params / 1e6:.1f}M parameters, {args.iters} iteration(s) after one warm-up",
          flush=True)
    c, s = model.config.in_channels, model.config.sample_size
    conditional = model.config.num_class_embeds is not None

    for dtype_name in args.dtype:
        dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
        model = model.to(dtype)
        for nthreads in args.threads:
            torch.set_num_threads(nthreads)
            for batch in args.batch:
                # The inputs of bench_unet: a constant sample, t = 250, class 7.
                sample = torch.full((batch, c, s, s), 0.1, dtype=dtype)   # [B, C, S, S]
                t = torch.full((batch,), 250.0)  # [B]; float32 as the pipeline passes it
                labels = torch.full((batch,), 7, dtype=torch.long) if conditional else None
                best = float("inf")
                with torch.inference_mode():
                    for it in range(args.iters + 1):
                        t0 = time.perf_counter()
                        out = model(sample, t, class_labels=labels).sample  # [B, C_out, S, S]
                        sec = time.perf_counter() - t0
                        if it > 0:  # the first pass creates oneDNN primitives and buffers
                            best = min(best, sec)
                report("cpu_baseline", out, {
                    "dtype": dtype_name, "threads": nthreads, "batch": batch, "iters": args.iters,
                    "s_pass": f"{best:.4f}", "s_image": f"{best / batch:.4f}",
                    "images_s": f"{batch / best:.4f}"})


if __name__ == "__main__":
    main()
