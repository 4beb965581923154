#!/usr/bin/env bash
# Install Debian's mongrel2-core (and curl, iproute2) when missing; needs root or sudo.
set -euo pipefail
missing=()
command -v mongrel2 >/dev/null && command -v m2sh >/dev/null || missing+=(mongrel2-core)
command -v curl >/dev/null || missing+=(curl)
command -v ip >/dev/null || missing+=(iproute2)   # the network-namespace test
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
