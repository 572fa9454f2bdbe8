#!/usr/bin/env bash
# Installs everything Sightline needs from Debian's packages (run as root on Debian 12).
set -euo pipefail
packages=(
  build-essential cmake ccache pkg-config
  libtorch-dev libopenblas0-openmp          # without OpenBLAS LibTorch uses the slow reference BLAS
  libopencv-dev libcli11-dev nlohmann-json3-dev libfmt-dev libpng-dev libjpeg-dev
  zlib1g-dev dataset-fashion-mnist            # gzip IDX reader; Fashion-MNIST for `sightline data fashion`
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  python3-numpy python3-pil python3-torch     # fixtures and cross-checks only
  python3-torchvision                         # its _C*.so gives RoIAlign/NMS at run time (docs/torchvision-ops.md)
  python3-dev pybind11-dev python3-pytest     # `import sightline` (docs/python.md) and its tests
  chromium                                    # the demo report test renders index.html headless
  clang libclang-rt-dev                       # libFuzzer targets (tools/fuzz.sh, a short CI run)
  libgloo-dev                                 # c10d ProcessGroupGloo headers: data-parallel training
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
