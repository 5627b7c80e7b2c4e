# Sourced by the scripts in deploy/dev: the checkout's root and the Swift toolchain on PATH.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
command -v swift >/dev/null 2>&1 || { echo "$(basename "$0"): the Swift toolchain is not on PATH" >&2; exit 1; }
