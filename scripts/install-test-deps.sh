#!/usr/bin/env bash
# What the tests need beyond requirements.txt: Debian's Chromium for the admin browser test.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "install-test-deps: installing Debian's chromium for the browser test"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
echo "install-test-deps: chromium $(chromium --version 2>/dev/null | awk '{print $2}')"
