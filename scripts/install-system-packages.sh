#!/usr/bin/env bash
# Install the Debian packages given as arguments when they are missing.
# Needs root (or sudo); without either it says what to install and carries on:
# the parts that need a package say so themselves when they run.
set -u
missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo="sudo"
else
    echo "unitcat: please install these Debian packages: ${missing[*]} (apt-get install -y ${missing[*]})" >&2
    exit 0
fi
echo "unitcat: installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1
} || echo "unitcat: could not install ${missing[*]}; install them by hand (apt-get install -y ${missing[*]})" >&2
exit 0
