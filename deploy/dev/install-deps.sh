#!/usr/bin/env bash
# Installs the Debian packages alertd needs to build, test and run locally.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  pkg-config
  libpq-dev libcurl4-openssl-dev libesmtp-dev libssl-dev
  postgresql-15 postgresql-client-15 postgresql-contrib
  python3-aiosmtpd
  postfix sasl2-bin libsasl2-modules openssl
  ca-certificates
  python3-yaml binutils systemd nodejs jq
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
# Postfix asks how to configure the machine's own mail system: not at all. deploy/dev/postfix.sh
# runs throwaway instances with their own configuration.
echo "postfix postfix/main_mailer_type select No configuration" | "${sudo_cmd[@]}" debconf-set-selections
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
