#!/usr/bin/env bash
# Makes docs/edit-grid.png, the README's picture of the six edits, with the CLI and the tiny
# test model (../shared/golden/tiny/pipeline, synthetic weights) from the golden editing PNGs.
# Rows: inpaint (image | mask | output), colorize (image | gray input | output), superres
# (image | 4x4 input | output), sdedit (strokes | - | output), denoise (image | noisy input
# sigma 0.5 | output), interpolate (alpha 0 | 0.5 | 1).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
golden="$root/../shared/golden/editing"
model="$root/../shared/golden/tiny/pipeline"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
edit() { "$root/cm4j" edit "$@" --model "$model" --device cpu --class 145 --seed 3 >/dev/null; }

edit inpaint --image "$golden/tiny_inpaint/image_00.png" --mask "$golden/tiny_inpaint/mask_00.png" \
  --out "$work/inpaint.png"
edit colorize --image "$golden/tiny_colorize/gray_00.png" --out "$work/colorize.png"
edit superres --image "$golden/tiny_superres/lowres_00.png" --out "$work/superres.png"
edit sdedit --image "$golden/tiny_sdedit/image_00.png" --out "$work/sdedit.png"
java "$root/scripts/EditGrid.java" noisy "$golden/tiny_denoise/image_00.png" "$work/noisy.png" 0.5 3
edit denoise --image "$work/noisy.png" --sigma 0.5 --noisy --out "$work/denoise.png"
edit interpolate --alphas 0,0.5,1 --out "$work/interpolate"

mkdir -p "$root/docs"
java "$root/scripts/EditGrid.java" tile "$root/docs/edit-grid.png" 3 \
  "$golden/tiny_inpaint/image_00.png,$golden/tiny_inpaint/mask_00.png,$work/inpaint.png" \
  "$golden/tiny_colorize/image_00.png,$golden/tiny_colorize/gray_00.png,$work/colorize.png" \
  "$golden/tiny_superres/image_00.png,$golden/tiny_superres/lowres_00.png,$work/superres.png" \
  "$golden/tiny_sdedit/image_00.png,-,$work/sdedit.png" \
  "$golden/tiny_denoise/image_00.png,$work/noisy.png,$work/denoise.png" \
  "$work/interpolate/0000.png,$work/interpolate/0001.png,$work/interpolate/0002.png"
echo "wrote $root/docs/edit-grid.png"
