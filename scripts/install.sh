#!/bin/sh
# Installs the confd binary for this machine: finds its OS, CPU and C library, downloads the
# matching release binary and SHA256SUMS, refuses the binary unless its checksum matches, installs
# it as $PREFIX/bin/confd and runs `confd --version`. POSIX sh (dash, busybox ash, bash).
#
#   curl -fsSL <base URL>/install.sh | sh
#   sh install.sh [--prefix DIR]
#
# CONFD_INSTALL_BASE_URL: where the release files are (default: the latest GitHub release).
# PREFIX or --prefix: installs into PREFIX/bin (default /usr/local).
set -eu

base_url="${CONFD_INSTALL_BASE_URL:-https://github.com/confd-bun/confd/releases/latest/download}"
prefix="${PREFIX:-/usr/local}"

fail() {
  echo "confd install: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || fail "--prefix needs a directory"; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    -h|--help) echo "usage: install.sh [--prefix DIR]   (installs DIR/bin/confd; default /usr/local)"; exit 0 ;;
    *) fail "unknown argument: $1 (usage: install.sh [--prefix DIR])" ;;
  esac
done

os_name=$(uname -s)
case "$os_name" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  MINGW*|MSYS*|CYGWIN*) fail "on Windows, download confd-<version>-windows-x64.exe from $base_url (see the README's Install section)" ;;
  *) fail "unsupported operating system: $os_name (builds exist for Linux, macOS and Windows)" ;;
esac

machine=$(uname -m)
case "$machine" in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) fail "unsupported CPU: $machine (builds exist for x86_64 and arm64)" ;;
esac

variant=""
if [ "$os" = linux ]; then
  # ldd names its C library; without ldd (some minimal images), the musl loader's presence decides.
  if command -v ldd >/dev/null 2>&1; then
    case "$(ldd --version 2>&1 || true)" in
      *musl*) variant=-musl ;;
    esac
  elif ls /lib/ld-musl-* >/dev/null 2>&1; then
    variant=-musl
  fi
  # The default x64 build needs AVX2 (2013 and later CPUs); older ones get the baseline build.
  if [ "$arch" = x64 ] && [ -z "$variant" ] && [ -r /proc/cpuinfo ] && ! grep -qw avx2 /proc/cpuinfo; then
    variant=-baseline
  fi
  if [ "$arch" = x64 ] && [ "$variant" = -musl ] && [ -r /proc/cpuinfo ] && ! grep -qw avx2 /proc/cpuinfo; then
    fail "this CPU lacks AVX2 and there is no musl baseline build; use the glibc baseline build or the container image"
  fi
fi
suffix="$os-$arch$variant"

if command -v curl >/dev/null 2>&1; then
  download() { curl -fsSL --retry 2 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  download() { wget -q -O "$2" "$1"; }
else
  fail "neither curl nor wget is installed; install one of them and run this again"
fi

if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
elif command -v openssl >/dev/null 2>&1; then
  sha256() { openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1; }
else
  fail "no sha256sum, shasum or openssl to verify the download with"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/confd-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

download "$base_url/SHA256SUMS" "$tmp/SHA256SUMS" || fail "could not download $base_url/SHA256SUMS"
# The release's file for this platform, e.g. confd-0.1.0-linux-x64: the list names the version.
name=""
want=""
while read -r sum file; do
  file=${file#\*}
  case "$sum" in *[!0-9a-f]*) continue ;; esac
  case "$file" in
    confd-*-"$suffix") [ ${#sum} -eq 64 ] && name=$file && want=$sum && break ;;
  esac
done < "$tmp/SHA256SUMS"
[ -n "$name" ] || fail "the release at $base_url has no build for $suffix"

echo "Downloading $name from $base_url"
download "$base_url/$name" "$tmp/$name" || fail "could not download $base_url/$name"
got=$(sha256 "$tmp/$name")
if [ "$got" != "$want" ]; then
  rm -f "$tmp/$name"
  fail "checksum mismatch for $name (expected $want, got $got); the download was deleted, nothing was installed"
fi

bindir="$prefix/bin"
mkdir -p "$bindir" 2>/dev/null || fail "cannot create $bindir (run as root, or choose another --prefix)"
[ -w "$bindir" ] || fail "cannot write to $bindir (run as root, or choose another --prefix)"
# Copied beside the target and renamed over it: a running confd keeps its old file, never a half-written one.
cp "$tmp/$name" "$bindir/.confd.$$" || fail "cannot write to $bindir"
chmod 0755 "$bindir/.confd.$$"
mv -f "$bindir/.confd.$$" "$bindir/confd" || { rm -f "$bindir/.confd.$$"; fail "cannot install $bindir/confd"; }

echo "Installed $bindir/confd"
"$bindir/confd" --version || fail "$bindir/confd was installed but does not run on this machine"
