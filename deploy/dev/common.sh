# Sourced by the scripts in deploy/dev: the checkout's root and the Swift toolchain on PATH.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
command -v swift >/dev/null 2>&1 || { echo "$(basename "$0"): the Swift toolchain is not on PATH" >&2; exit 1; }
# alertd's release build, as deploy/install.sh makes it (Swift's runtime linked statically): every
# script builds the release with these same flags into .build, so that one build serves them all
# (other flags would rebuild every module, about 150 s here).
release=(-c release --static-swift-stdlib)

# Builds the release's products "$@" (--product alertd, say) and puts the toolchain's crash
# reporter where a static alertd looks for it (../libexec/alertd/, as deploy/install.sh installs
# it): without it, every start says "unable to locate swift-backtrace".
build_release() {
  swift build "${release[@]}" "$@"
  local bin reporter
  bin="$(swift build "${release[@]}" --show-bin-path)"
  reporter="$(dirname "$(readlink -f "$(command -v swift)")")/../libexec/swift/linux/swift-backtrace-static"
  if [ -x "$reporter" ]; then install -D -m 0755 "$reporter" "$bin/../libexec/alertd/swift-backtrace"; fi
}
