#!/usr/bin/env bash
# Sets up the PyTorch baseline of scripts/cpu-bench.sh: diffusers' UNet2DModel on Debian's
# PyTorch (python3-torch, 1.13), with no PyPI:
#   1. apt installs python3-torch, OpenBLAS (libtorch's recommended BLAS: without it PyTorch's
#      fp32 matmuls run on Debian's reference BLAS, ten times slower) and the pure-Python
#      Debian packages diffusers and huggingface_hub import (skipped when all are there;
#      needs root);
#   2. git archives the Python packages of diffusers v0.25.0 (a release that runs on
#      PyTorch 1.13 unchanged) and huggingface_hub v0.20.3 (its contemporary) into the
#      git-ignored .baseline/ at the repository root;
#   3. writes .baseline/safetensors, a small pure-Python stand-in for the compiled
#      safetensors package (diffusers imports it; the benchmark uses random weights).
# Their code stays in .baseline/ and is never committed. Running it again is harmless: a
# package already extracted at the same tag is kept (--force extracts again).
# Sources (environment): DIFFUSERS_GIT, HF_HUB_GIT: a git URL or a local git directory,
# bare or not (default: the GitHub repositories); DIFFUSERS_REF (v0.25.0), HF_HUB_REF
# (v0.20.3); CM4J_BASELINE_PYTHON (/usr/bin/python3), CM4J_BASELINE_SKIP_APT=1.
set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST="$ROOT/.baseline"
PY=${CM4J_BASELINE_PYTHON:-/usr/bin/python3}
DIFFUSERS_GIT=${DIFFUSERS_GIT:-https://github.com/huggingface/diffusers.git}
DIFFUSERS_REF=${DIFFUSERS_REF:-v0.25.0}
HF_HUB_GIT=${HF_HUB_GIT:-https://github.com/huggingface/huggingface_hub.git}
HF_HUB_REF=${HF_HUB_REF:-v0.20.3}
FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  "") ;;
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "cpu-baseline-setup: unknown argument $1 (only --force)" >&2; exit 2 ;;
esac

die() { echo "cpu-baseline-setup: $*" >&2; exit 1; }

# Debian package names of everything the two packages import at `import diffusers` time;
# libopenblas0-openmp follows torch.set_num_threads (it shares PyTorch's OpenMP runtime).
APT_PACKAGES=(python3-torch libopenblas0-openmp python3-numpy python3-pil python3-regex python3-requests
              python3-filelock python3-importlib-metadata python3-tqdm python3-yaml
              python3-typing-extensions python3-packaging)
PY_MODULES="torch, numpy, PIL, regex, requests, filelock, importlib_metadata, tqdm, yaml, typing_extensions, packaging"

# --- 1. Debian packages ---------------------------------------------------------------
# blas: the BLAS library PyTorch loads (empty when torch does not import).
blas() {
  "$PY" -c "import torch; print(*sorted({l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l}))" 2> /dev/null
}
if [ -x "$PY" ] && "$PY" -c "import $PY_MODULES" 2> /dev/null && [[ $(blas) == *openblas* ]]; then
  echo "python packages: present ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
elif [ "${CM4J_BASELINE_SKIP_APT:-0}" = 1 ]; then
  die "$PY cannot import one of: $PY_MODULES (and CM4J_BASELINE_SKIP_APT=1)"
else
  command -v apt-get > /dev/null || die "apt-get not found: install ${APT_PACKAGES[*]} by hand"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo > /dev/null || die "installing ${APT_PACKAGES[*]} needs root (or sudo)"
    SUDO=sudo
  fi
  echo "apt-get install ${APT_PACKAGES[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${APT_PACKAGES[@]}" || die "apt-get install failed (try: apt-get update)"
  "$PY" -c "import $PY_MODULES" || die "$PY still cannot import the packages above"
fi
case $(blas) in
  *openblas*) ;;
  */blas/libblas.so*) echo "cpu-baseline-setup: warning: PyTorch loads Debian's reference BLAS" \
    "(update-alternatives --config libblas.so.3-x86_64-linux-gnu picks OpenBLAS)" >&2 ;;
  *) echo "cpu-baseline-setup: note: PyTorch's BLAS is $(blas)" >&2 ;;
esac

# --- 2. diffusers and huggingface_hub sources -----------------------------------------
# extract NAME GIT REF SUBDIR: git archives SUBDIR/NAME of GIT at REF into $DEST/NAME.
extract() {
  local name=$1 git=$2 ref=$3 subdir=$4
  local stamp="$DEST/.$name.source"
  if [ "$FORCE" = 0 ] && [ -d "$DEST/$name" ] && [ "$(cat "$stamp" 2> /dev/null)" = "$ref" ]; then
    echo "$name: $ref already in .baseline/$name"
    return 0
  fi
  command -v git > /dev/null || die "git not found"
  local tmp gitdir
  tmp=$(mktemp -d) || die "mktemp failed"
  if [ -d "$git" ]; then
    gitdir=$(git -C "$git" rev-parse --git-dir 2> /dev/null) ||
      die "$git is a directory but not a git repository"
    gitdir=$(cd "$git" && cd "$gitdir" && pwd)
  else
    echo "$name: cloning $ref from $git"
    git clone --quiet --bare --depth 1 --branch "$ref" "$git" "$tmp/repo.git" ||
      { rm -rf "$tmp"; die "cannot clone $git at $ref (no network? set ${5} to a local git dir)"; }
    gitdir="$tmp/repo.git"
  fi
  git --git-dir="$gitdir" rev-parse --verify --quiet "$ref^{commit}" > /dev/null ||
    { rm -rf "$tmp"; die "$git has no tag or commit $ref"; }
  mkdir -p "$tmp/out" &&
    git --git-dir="$gitdir" archive --format=tar "$ref" "$subdir/$name" | tar -x -C "$tmp/out" ||
    { rm -rf "$tmp"; die "git archive of $subdir/$name at $ref failed"; }
  [ -f "$tmp/out/$subdir/$name/__init__.py" ] || { rm -rf "$tmp"; die "$git at $ref has no $subdir/$name"; }
  mkdir -p "$DEST"
  rm -rf "$DEST/$name"
  mv "$tmp/out/$subdir/$name" "$DEST/$name"
  echo "$ref" > "$stamp"
  rm -rf "$tmp"
  echo "$name: $ref -> .baseline/$name (from $git)"
}
extract diffusers "$DIFFUSERS_GIT" "$DIFFUSERS_REF" src DIFFUSERS_GIT
extract huggingface_hub "$HF_HUB_GIT" "$HF_HUB_REF" src HF_HUB_GIT

# --- 3. the safetensors stand-in -------------------------------------------------------
mkdir -p "$DEST/safetensors"
cat > "$DEST/safetensors/__init__.py" << 'EOF'
# Written by cm4j's scripts/cpu-baseline-setup.sh: a pure-Python stand-in for the compiled
# safetensors package, enough for diffusers' `import safetensors` and
# `safetensors.torch.load_file` (the benchmark itself uses random weights).
from . import torch  # noqa: F401  (diffusers calls safetensors.torch.load_file)

__version__ = "0.0.0+cm4j-shim"
EOF
cat > "$DEST/safetensors/torch.py" << 'EOF'
# Written by cm4j's scripts/cpu-baseline-setup.sh. The file format: an 8-byte little-endian
# header length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw data.
import json
import struct

import torch

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
           "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
           "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def load_file(filename, device="cpu"):
    with open(filename, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{filename}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        t = torch.frombuffer(data, dtype=torch.uint8, offset=begin, count=end - begin) \
            if end > begin else torch.empty(0, dtype=torch.uint8)
        out[name] = t.view(_DTYPES[info["dtype"]]).reshape(info["shape"]).clone().to(device)
    return out


def save_file(tensors, filename, metadata=None):
    raise NotImplementedError("the cm4j baseline's safetensors stand-in only reads files")
EOF
echo "safetensors: stand-in written to .baseline/safetensors"

# --- check -----------------------------------------------------------------------------
PYTHONPATH="$DEST" "$PY" -c "
import torch, diffusers, huggingface_hub
from diffusers import UNet2DModel
print('baseline ready: diffusers', diffusers.__version__, '| huggingface_hub',
      huggingface_hub.__version__, '| torch', torch.__version__)
" || die "the baseline does not import (see above); try --force"
