"""Exports diffusers' UNet2DModel to ONNX for the ONNX Runtime side of scripts/cpu-bench.sh and
the java-bench module: the model of scripts/cpu_baseline.py (the same config, PyTorch's default
initialisation under torch.manual_seed(0)), traced by torch.onnx.export with the batch as a
dynamic axis.

Run with Debian's python after scripts/cpu-baseline-setup.sh:
    PYTHONPATH=.baseline /usr/bin/python3 scripts/onnx_export.py [--config FILE] [--out FILE.onnx]

Inputs of the graph: sample [B, C, S, S] float32, timestep [B] float32, class_labels [B] int64
(class-conditional configs only); output: out_sample [B, C_out, S, S]. Beside FILE.onnx it
writes FILE.check.json, the bench's inputs at batch 1 (sample 0.1, timestep 250, class 7) and
PyTorch's output for them, which the ONNX Runtime bench compares its own output with, and
FILE.config.json, a copy of the config (cpu-bench exports again when the config differs; the
JMH benchmark builds cm4j's UNet from it).
"""
import argparse
import json
import os
import shutil
import sys
import time
import warnings

from cpu_baseline import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "..", "shared", "golden", "imagenet64", "config.json")
DEFAULT_OUT = os.path.join(ROOT, "build", "onnx", "imagenet64.onnx")
# The newest opset PyTorch 1.13's exporter writes (GroupNorm then becomes
# InstanceNormalization + Mul + Add; opset 18 has GroupNormalization).
OPSET = 17


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=os.path.normpath(DEFAULT_CONFIG),
                   help="UNet2DModel config.json (default: ../shared/golden/imagenet64)")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help="the .onnx file to write (default: build/onnx/imagenet64.onnx)")
    return p.parse_args()


def main():
    args = parse_args()
    model = load_model(args.config, "onnx_export")
    import torch
    # The tracer warns at each Python branch on a shape: diffusers' channel asserts and its
    # `.contiguous()` for batches of 64 or more, neither of which changes what the graph computes.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    c, s = model.config.in_channels, model.config.sample_size
    conditional = model.config.num_class_embeds is not None

    class Forward(torch.nn.Module):
        """The tensor in, the tensor out: UNet2DModel returns a dataclass."""

        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, class_labels=None):
            return self.unet(sample, timestep, class_labels=class_labels).sample

    # The inputs of bench_unet and cpu_baseline.py: a constant sample, t = 250, class 7.
    sample = torch.full((1, c, s, s), 0.1)  # [1, C, S, S]
    timestep = torch.full((1,), 250.0)      # [1]
    labels = torch.full((1,), 7, dtype=torch.long) if conditional else None  # [1]
    inputs = (sample, timestep, labels) if conditional else (sample, timestep)
    names = ["sample", "timestep", "class_labels"][:len(inputs)]
    with torch.inference_mode():
        expected = Forward(model)(*inputs)  # [1, C_out, S, S]

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    t0 = time.perf_counter()
    with torch.no_grad():
        torch.onnx.export(Forward(model), inputs, args.out, opset_version=OPSET,
                          input_names=names, output_names=["out_sample"],
                          dynamic_axes={n: {0: "batch"} for n in names + ["out_sample"]},
                          do_constant_folding=True)
    seconds = time.perf_counter() - t0

    check = {"sample": 0.1, "timestep": 250.0, "class_labels": 7 if conditional else None,
             "shape": list(expected.shape), "out_sample": expected.flatten().tolist()}
    base = os.path.splitext(args.out)[0]
    with open(base + ".check.json", "w") as f:
        json.dump(check, f)
    shutil.copyfile(args.config, base + ".config.json")
    print(f"onnx_export: wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB, opset {OPSET},"
          f" torch {torch.__version__}, {seconds:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
