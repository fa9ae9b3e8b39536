"""The diffusers baseline of scripts/gpu-bench.sh: UNet2DModel forward-pass latency on a GPU,
eager and under torch.compile, in half precision with channels_last memory (the fastest
settings diffusers documents), measured like native/bench/bench_cuda measures cm4j: the same
config and inputs, a warm-up, then the median of timed passes.

Run from the repository root with the diffusers source of scripts/cpu-baseline-setup.sh:
    PYTHONPATH=.baseline python3 scripts/gpu_baseline.py \
        [--config FILE] [--dtype fp16,bf16,fp32] [--batch 1,8,64,256] [--modes eager,compile]
        [--compile-batch 1,64] [--device cuda] [--iters N]

Weights are PyTorch's default initialisation under torch.manual_seed(0) (latency does not
depend on their values). Inputs stay on the device and so does the output (cm4j's forward
also uploads its input and downloads its output, so the comparison favours diffusers). Prints
one line per (dtype, mode, batch):
    gpu_baseline dtype=fp16 mode=eager batch=8 iters=10 ms=... img_per_s=...
and a line `gpu_baseline skipped mode=compile reason=...` for what could not run.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_baseline import DEFAULT_CONFIG, int_list, load_model, report  # noqa: E402

DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}
MODES = ("eager", "compile")


def name_list(allowed):
    def parse(text):
        values = [v for v in text.split(",") if v]
        bad = [v for v in values if v not in allowed]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"expected names from {','.join(allowed)}, found {text!r}")
        return values
    return parse


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=os.path.normpath(DEFAULT_CONFIG),
                   help="UNet2DModel config.json (default: ../shared/golden/imagenet64)")
    p.add_argument("--dtype", type=name_list(tuple(DTYPES)), default=["fp16"])
    p.add_argument("--batch", type=int_list, default=[1, 8, 64, 256])
    p.add_argument("--modes", type=name_list(MODES), default=list(MODES))
    p.add_argument("--compile-batch", type=int_list, default=None,
                   help="batches to compile (each size compiles anew; default: all of --batch)")
    p.add_argument("--device", default="cuda", help="torch device (cpu checks this script)")
    p.add_argument("--iters", type=int, default=10, help="timed passes after the warm-up")
    args = p.parse_args()
    if args.iters < 1:
        p.error("--iters must be at least 1")
    return args


def pytree_shims(torch):
    """diffusers 0.25 registers its output classes with torch.utils._pytree's private names of
    the time; newer PyTorch renamed them. Map the old names onto the new ones."""
    pytree = torch.utils._pytree
    if not hasattr(pytree, "_register_pytree_node") and hasattr(pytree, "register_pytree_node"):
        pytree._register_pytree_node = lambda cls, flatten, unflatten, **kw: pytree.register_pytree_node(
            cls, flatten, unflatten)
    if not hasattr(pytree, "_dict_flatten"):
        pytree._dict_flatten = lambda d: (list(d.values()), list(d.keys()))
    if not hasattr(pytree, "_dict_unflatten"):
        pytree._dict_unflatten = lambda values, context: dict(zip(context, values))


def timed_ms(torch, device, fn, iters):
    """Median milliseconds of fn() over iters calls (the caller has warmed it up), and the
    last call's result."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2], out


def main():
    args = parse_args()
    import torch
    pytree_shims(torch)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_baseline: torch sees no CUDA device")
    model = load_model(args.config, "gpu_baseline")
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device
    print(f"# torch {torch.__version__} on {name}, config {args.config}, median of {args.iters} "
          f"after a warm-up", flush=True)
    c, s = model.config.in_channels, model.config.sample_size
    conditional = model.config.num_class_embeds is not None
    compile_batches = args.compile_batch or args.batch

    for dtype_name in args.dtype:
        dtype = getattr(torch, DTYPES[dtype_name])
        model = model.to(device=args.device, dtype=dtype, memory_format=torch.channels_last)
        for mode in args.modes:
            if mode == "compile" and not hasattr(torch, "compile"):
                print(f"gpu_baseline skipped dtype={dtype_name} mode=compile "
                      f"reason=torch_{torch.__version__}_has_no_torch.compile", flush=True)
                continue
            for batch in args.batch:
                if mode == "compile" and batch not in compile_batches:
                    continue
                # bench_cuda's inputs: normal samples, spread timesteps, spread classes.
                gen = torch.Generator().manual_seed(7)
                sample = torch.randn((batch, c, s, s), generator=gen).to(args.device, dtype)  # [B, C, S, S]
                sample = sample.contiguous(memory_format=torch.channels_last)
                t = torch.tensor([250.0 * torch.log(torch.tensor(0.002 + 80.0 * b / batch + 1.0)).item()
                                  for b in range(batch)], device=args.device)  # [B]
                labels = (torch.arange(batch, device=args.device) * 97 % 1000) if conditional else None
                net = model
                start = time.perf_counter()
                if mode == "compile":
                    torch._dynamo.reset()  # each batch size compiled on its own, timed alone
                    net = torch.compile(model)
                try:
                    with torch.inference_mode():
                        # The first call (compiling, under torch.compile) is the warm-up.
                        first = time.perf_counter()
                        net(sample, t, class_labels=labels)
                        if args.device.startswith("cuda"):
                            torch.cuda.synchronize()
                        warm_s = time.perf_counter() - first
                        ms, out = timed_ms(torch, args.device,  # out: [B, C_out, S, S]
                                           lambda: net(sample, t, class_labels=labels).sample, args.iters)
                except Exception as e:  # a compile failure is reported, not fatal
                    reason = f"{type(e).__name__}: {e}".splitlines()[0].replace(" ", "_")[:160]
                    print(f"gpu_baseline skipped dtype={dtype_name} mode={mode} batch={batch} "
                          f"reason={reason}", flush=True)
                    continue
                report("gpu_baseline", out, {
                    "dtype": dtype_name, "mode": mode, "batch": batch, "iters": args.iters,
                    "ms": f"{ms:.3f}", "img_per_s": f"{1e3 * batch / ms:.1f}",
                    "first_call_s": f"{warm_s + (first - start):.1f}"})


if __name__ == "__main__":
    main()
