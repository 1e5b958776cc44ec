#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: the embedded toolchain, QEMU and the
# Fashion-MNIST data from apt (when root), then .venv with this project installed (editable).
# A second run is fast and needs no network: apt is skipped when every package is installed,
# pip when pyproject.toml has not changed since the last successful install.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm dataset-fashion-mnist)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "setup: installing apt packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "setup: missing apt packages: ${missing[*]}" >&2
        echo "setup: install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        echo "setup: continuing; the Python parts work without them (firmware builds and emulation do not)." >&2
    fi
fi

if [[ ! -x .venv/bin/python ]]; then
    if command -v python3.11 >/dev/null 2>&1; then
        py=python3.11
    else
        py=python3
    fi
    echo "setup: creating .venv with $py"
    "$py" -m venv .venv
fi

stamp=.venv/.setup-stamp
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "setup: pip install -e . into .venv"
    pip_args=(-q install -e .)
    # The pinned CPU build of torch lies in /opt/wheels on these machines.
    if [[ -d /opt/wheels ]]; then
        pip_args+=(--find-links /opt/wheels)
    fi
    .venv/bin/python -m pip "${pip_args[@]}"
    echo "$want" > "$stamp"
fi
echo "setup: ok"
