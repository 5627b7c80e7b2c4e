#!/usr/bin/env bash
# Builds alertd for release, linked statically against Swift's runtime, and installs it:
#
#   PREFIX/bin/alertd
#   PREFIX/libexec/alertd/swift-backtrace     the runtime's crash reporter (stack traces on a crash)
#   PREFIX/share/alertd/sql/                  migrations, rollbacks, alertd-login.sql, the local platform fixture
#   PREFIX/share/alertd/templates/            the Mustache templates (ALERTD_TEMPLATES_DIR overrides them)
#   PREFIX/share/doc/alertd/                  README and docs/
#
# alertd finds its SQL and templates beside itself, so nothing else needs setting. At run time it
# needs only libpq5, libcurl4, libesmtp6, libssl3 and ca-certificates (deploy/docker/Dockerfile).
#
#   bash deploy/install.sh [--prefix /usr/local] [--build-path .build]
#
# The build is the one the development scripts make too (deploy/dev/common.sh), so after one of
# them has built, installing takes seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

prefix=/usr/local
build_path=.build
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --build-path) build_path="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done

echo "install.sh: building alertd (release, static Swift runtime) in $build_path"
swift build -c release --static-swift-stdlib --build-path "$build_path" --product alertd
binary="$build_path/release/alertd"

# The crash reporter of the toolchain that built alertd, in its static form.
toolchain_bin="$(dirname "$(readlink -f "$(command -v swift)")")"
reporter="$toolchain_bin/../libexec/swift/linux/swift-backtrace-static"

echo "install.sh: installing into $prefix"
install -d "$prefix/bin" "$prefix/libexec/alertd" "$prefix/share/alertd/sql/supabase" "$prefix/share/alertd/sql/dev" "$prefix/share/alertd/templates" "$prefix/share/doc/alertd"
install -m 0755 "$binary" "$prefix/bin/alertd"
if [ -x "$reporter" ]; then
  install -m 0755 "$reporter" "$prefix/libexec/alertd/swift-backtrace"
else
  echo "install.sh: warning: no swift-backtrace-static in the toolchain; a crash will print no stack trace" >&2
fi
rm -rf "$prefix/share/alertd/sql/supabase/migrations" "$prefix/share/alertd/sql/supabase/rollbacks"
cp -R deploy/supabase/migrations deploy/supabase/rollbacks "$prefix/share/alertd/sql/supabase/"
install -m 0644 deploy/supabase/alertd-login.sql "$prefix/share/alertd/sql/supabase/"
install -m 0644 deploy/dev/init-platform.sql "$prefix/share/alertd/sql/dev/"
install -m 0644 templates/*.mustache "$prefix/share/alertd/templates/"
install -m 0644 README.md docs/*.md "$prefix/share/doc/alertd/"
echo "install.sh: installed $("$prefix/bin/alertd" --version)"
