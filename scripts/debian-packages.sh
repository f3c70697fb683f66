#!/usr/bin/env bash
# The Debian packages that `npm test` and `npm run bench` run (standard clients, a browser, a
# broker), installed when missing. npm runs this before both (`pretest`, `prebench`).
# As root or with passwordless sudo it installs what is missing; otherwise it stops at once and
# prints the one command to run. Usage: scripts/debian-packages.sh test|bench|all
set -euo pipefail

# One line per package: its Debian name, what needs it (test or bench), and the shell check that
# passes when it is installed. Add a package here and both commands pick it up.
PACKAGES=(
  "mosquitto-clients  test   command -v mosquitto_pub && command -v mosquitto_sub"
  "curl               test   command -v curl"
  "coreutils          test   command -v stdbuf"
  "openssl            test   command -v openssl"
  "chromium           test   test -x \"\${CHROMIUM_PATH:-/usr/bin/chromium}\""
  "python3-paho-mqtt  test   /usr/bin/python3 -c 'import paho.mqtt' 2>/dev/null"
  "prometheus         test   command -v prometheus && command -v promtool"
  "mosquitto          bench  command -v mosquitto"
)

want="${1:-all}"
case "$want" in test | bench | all) ;; *) echo "usage: $0 test|bench|all" >&2; exit 2 ;; esac

missing() {
  local line package group check
  for line in "${PACKAGES[@]}"; do
    read -r package group check <<<"$line"
    [ "$want" = all ] || [ "$want" = "$group" ] || continue
    bash -c "$check" >/dev/null 2>&1 || printf '%s\n' "$package"
  done
}

mapfile -t need < <(missing)
[ ${#need[@]} -eq 0 ] && exit 0

command="apt-get install -y --no-install-recommends ${need[*]}"
if ! command -v apt-get >/dev/null; then
  echo "npm $want needs these Debian packages, or their equivalents on this system: ${need[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "npm $want needs Debian packages that are not installed. Run this, then npm $want again:" >&2
  echo "  sudo apt-get update && sudo $command" >&2
  exit 1
fi

echo "Installing the Debian packages npm $want needs: ${need[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"

mapfile -t still < <(missing)
if [ ${#still[@]} -gt 0 ]; then
  echo "Installed, but still not found: ${still[*]}" >&2
  exit 1
fi
