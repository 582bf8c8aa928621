#!/usr/bin/env bash
# Install the allow-listed real training videos (docs/ENGINES.md, "Training data"). Training uses them; CI and the
# tests never need them. Debian/Ubuntu only; runs apt through sudo unless already root.
#
#   tools/install_training_data.sh            # apt packages + node-opencv unpacked into the cache
#   STREAMFUSE_CACHE=/big/disk tools/install_training_data.sh
#
# node-opencv cannot be installed next to current nodejs (dependency conflict), so its .deb is downloaded and
# unpacked into $STREAMFUSE_CACHE/node-opencv (default ~/.cache/streamfuse); streamfuse.data.video finds
# examples/files/motion.mov there. No other file of these packages is training data.
set -euo pipefail

PACKAGES=(python-kivy-examples python3-mecavideo gem-doc openboard-common)
CACHE="${STREAMFUSE_CACHE:-$HOME/.cache/streamfuse}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [ ! -f "$CACHE/node-opencv/usr/share/doc/node-opencv/examples/files/motion.mov" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && apt-get download node-opencv)
    mkdir -p "$CACHE/node-opencv"
    dpkg-deb -x "$tmp"/node-opencv_*.deb "$CACHE/node-opencv"
fi

python3 - <<'PY' || echo "installed; list the videos with: streamfuse clips --list"
from streamfuse.data.video import training_videos
videos = training_videos()
print(f"{len(videos)} allow-listed training videos:")
for v in videos:
    print(f"  {v}")
PY
