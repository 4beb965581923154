#!/usr/bin/env bash
# Install Debian's prometheus server when missing (tests/test_e2e_metrics.py
# scrapes wsgid with it; without it that test is skipped); needs root or sudo.
set -euo pipefail
command -v prometheus >/dev/null && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
