#!/usr/bin/env bash
# `make test` runs this before pytest: the Debian packages the suite drives must be present.
# Chromium at /usr/bin/chromium for the browser tests (Playwright never downloads a browser;
# IVR_SKIP_BROWSER_TESTS=1 skips those tests, and then Chromium is not needed), nginx and
# openssl for tests/nginx.py. As root with apt-get, missing ones are installed; otherwise
# it stops with one line naming the command to run.
set -euo pipefail

nginx_path() { command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }; }

missing() {
  local packages=()
  if [ "${IVR_SKIP_BROWSER_TESTS:-}" != 1 ] && [ ! -x /usr/bin/chromium ]; then
    packages+=(chromium)
  fi
  nginx_path >/dev/null || packages+=(nginx)
  command -v openssl >/dev/null || packages+=(openssl)
  echo "${packages[@]}"
}

read -ra packages <<<"$(missing)"
[ ${#packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  sudo=""
  [ "$(id -u)" != 0 ] && sudo="sudo "
  hint=""
  [[ " ${packages[*]} " == *" chromium "* ]] &&
    hint="  (or set IVR_SKIP_BROWSER_TESTS=1 to skip the browser tests)"
  echo "make test needs ${packages[*]}: run  ${sudo}apt-get install -y ${packages[*]}$hint" >&2
  exit 1
fi

echo "installing ${packages[*]} (apt-get)"
if ! { apt-get update -qq &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null; }; then
  echo "make test: apt-get install -y ${packages[*]} failed" >&2
  exit 1
fi
# The tests run their own nginx in the foreground on loopback; stop the packaged service
# if the install started it.
if [[ " ${packages[*]} " == *" nginx "* ]] && [ -s /run/nginx.pid ]; then
  if [ -d /run/systemd/system ]; then
    systemctl stop nginx
  else
    "$(nginx_path)" -s quit
  fi
fi
read -ra still <<<"$(missing)"
if [ ${#still[@]} -ne 0 ]; then
  echo "make test: ${still[*]} still missing after apt-get install" >&2
  exit 1
fi
