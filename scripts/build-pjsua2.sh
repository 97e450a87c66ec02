#!/bin/bash
# Build the pjsua2 Python module (pjproject 2.12.1) from Debian's `ring` source package and
# leave a cached wheel in var/wheels/; with --install, pip-install it into the venv.
#
# Owns: fetching/verifying the source, patching, configuring, compiling, the wheel.
# Must not touch: the system's apt lists/cache (apt runs with private dirs under var/), the repo
# outside var/. Idempotent: when var/wheels/ already holds the wheel for this configuration hash
# (this script + scripts/pjsua2/* + the Python ABI), it only (re)installs if asked.
#
# Needs (Debian): build-essential swig libssl-dev pkg-config patch (dpkg-dev is NOT needed: we use
# `apt-get source --download-only`). Run as root on a fresh machine it apt-get installs the
# missing ones. License: pjproject is GPL-2+, so confbot is distributed under GPL-2.0-or-later.
#
# Usage: scripts/build-pjsua2.sh [--install] [--force]
#   PYTHON=/path/to/python   interpreter to build for (default: .venv/bin/python)
#   JOBS=N                   parallel make jobs (default: nproc)
# The last line printed is the wheel's path.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
JOBS="${JOBS:-$(nproc)}"
INSTALL=0; FORCE=0
for a in "$@"; do
    case "$a" in
        --install) INSTALL=1 ;;
        --force) FORCE=1 ;;
        *) echo "usage: $0 [--install] [--force]" >&2; exit 2 ;;
    esac
done

ORIG="ring_20230206.0~ds2.orig.tar.gz"
ORIG_SHA256="028661c72b962a32d30a310f5f24e77540c96c479576e886bc3a0a8e9ececff0"
PJ_PATH="jami-20230206.0/daemon/contrib/tarballs-unpacked/pjproject-3b78ef1c48732d238ba284cdccb04dc6de79c54f.tar.gz/pjproject-3b78ef1c48732d238ba284cdccb04dc6de79c54f/"
PJ_VERSION="2.12.1"
CONFIGURE_ARGS=(
    --disable-shared --enable-epoll
    --disable-sound --disable-video --disable-opus --disable-libwebrtc --disable-libwebrtc-aec3
    --disable-libyuv --disable-sdl --disable-ffmpeg --disable-v4l2 --disable-openh264 --disable-vpx
    --disable-bcg729 --disable-silk --disable-opencore-amr --disable-android-mediacodec
    --disable-gsm-codec --disable-speex-codec --disable-speex-aec --disable-ilbc-codec
    --disable-g7221-codec
)

VAR="$ROOT/var"
CACHE="$VAR/cache/pjsua2"
BUILD="$VAR/build/pjsua2"
WHEELS="$VAR/wheels"
step() { echo "==> [pjsua2 $1/8] $2"; }
die() { echo "error: $*" >&2; exit 1; }

[ -x "$PYTHON" ] || die "no Python at $PYTHON (create the venv first, or set PYTHON=)"
PYTAG="$("$PYTHON" -c 'import sys,sysconfig; print(f"cp{sys.version_info[0]}{sys.version_info[1]}-" + sysconfig.get_platform().replace("-","_").replace(".","_"))')"

# Configuration hash: everything that changes the binary.
CFG_HASH="$( { cat "$0"; cat "$ROOT"/scripts/pjsua2/*; echo "$PYTAG"; "$PYTHON" -c 'import sys; print(sys.version)'; } \
             | sha256sum | cut -c1-12)"
WHEEL_VERSION="$PJ_VERSION+confbot.$CFG_HASH"

install_wheel() {
    local whl="$1"
    if "$PYTHON" -m pip show pjsua2-python >/dev/null 2>&1; then
        die "PyPI's pjsua2-python is installed in this venv; it conflicts with this build (pip uninstall pjsua2-python)"
    fi
    local have
    have="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("pjsua2"))' 2>/dev/null || true)"
    if [ "$have" = "$WHEEL_VERSION" ]; then
        echo "==> pjsua2 $have already installed in $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    else
        echo "==> installing $(basename "$whl")"
        "$PYTHON" -m pip install -q --no-deps --force-reinstall "$whl"
    fi
    "$PYTHON" -c 'import importlib.metadata as m, pjsua2; print("==> pjsua2", m.version("pjsua2"), "imports from", pjsua2.__file__)'
}

step 1 "configuration $CFG_HASH for $PYTAG"
shopt -s nullglob
cached=("$WHEELS"/pjsua2-"$PJ_VERSION"+confbot."$CFG_HASH"-*.whl)
if [ "$FORCE" = 0 ] && [ ${#cached[@]} -gt 0 ]; then
    echo "==> cached wheel matches configuration; nothing to build"
    [ "$INSTALL" = 1 ] && install_wheel "${cached[0]}"
    echo "${cached[0]}"
    exit 0
fi

step 2 "checking build tools"
need=()
command -v cc >/dev/null && command -v c++ >/dev/null && command -v make >/dev/null || need+=(build-essential)
command -v swig >/dev/null || need+=(swig)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v patch >/dev/null || need+=(patch)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing Debian packages: ${need[*]} (installing them needs root)"
    echo "    apt-get install ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; }
fi
"$PYTHON" -c 'import setuptools, wheel' 2>/dev/null || "$PYTHON" -m pip install -q setuptools wheel

step 3 "fetching $ORIG (Debian source package ring)"
mkdir -p "$CACHE"
if [ -f "$CACHE/$ORIG" ] && echo "$ORIG_SHA256  $CACHE/$ORIG" | sha256sum -c --status; then
    echo "    cached"
else
    # apt with private state: a deb-src list made from the system's own mirrors, and its own
    # lists/cache dirs, so the system's package lists and cache are left exactly as they were.
    APTD="$CACHE/apt"
    rm -rf "$APTD"; mkdir -p "$APTD/parts" "$APTD/lists/partial" "$APTD/cache/archives/partial" "$APTD/dl"
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: turn "Types: deb" into "Types: deb-src" (keeps URIs, suites, keys)
        sed -E 's/^Types:[[:space:]]+deb([[:space:]]|$).*/Types: deb-src/' "$f" > "$APTD/parts/$(basename "$f")"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # one-line format: each "deb ..." line also as "deb-src ..."
        sed -nE 's/^[[:space:]]*deb([[:space:]]+)/deb-src\1/p' "$f" > "$APTD/parts/$(basename "$f").list"
    done
    ls "$APTD/parts"/* >/dev/null 2>&1 || die "no apt sources found in /etc/apt"
    APT_OPTS=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$APTD/parts"
              -o "Dir::State::Lists=$APTD/lists" -o "Dir::Cache=$APTD/cache"
              -o APT::Sandbox::User=root -q)
    echo "    apt-get update (private lists under $APTD)"
    # a third-party repository without source lists makes update fail; Debian's may still be fine
    apt-get "${APT_OPTS[@]}" update >"$APTD/update.log" 2>&1 \
        || { grep -E "^(E|W):" "$APTD/update.log" | head -5 | sed 's/^/    /'; echo "    (continuing: apt-get source decides)"; }
    (cd "$APTD/dl" && apt-get "${APT_OPTS[@]}" source --download-only ring) \
        || die "apt-get source ring failed"
    [ -f "$APTD/dl/$ORIG" ] || die "Debian's ring source no longer ships $ORIG (got: $(ls "$APTD/dl")); update the pin in $0"
    echo "$ORIG_SHA256  $APTD/dl/$ORIG" | sha256sum -c --status \
        || die "$ORIG sha256 mismatch: got $(sha256sum "$APTD/dl/$ORIG" | cut -d' ' -f1), pinned $ORIG_SHA256"
    mv "$APTD/dl/$ORIG" "$CACHE/$ORIG"
    rm -rf "$APTD"
fi
echo "    sha256 ok"

step 4 "extracting pjproject $PJ_VERSION and patching"
rm -rf "$BUILD"; mkdir -p "$BUILD"
tar -xzf "$CACHE/$ORIG" -C "$BUILD" --strip-components=6 "$PJ_PATH"
grep -q "PJ_VERSION_MINOR  := 12" "$BUILD/version.mak" || die "unexpected pjproject version in the tarball"
for p in "$ROOT"/scripts/pjsua2/*.patch; do
    echo "    $(basename "$p")"
    patch -d "$BUILD" -p1 --quiet --forward < "$p"
done
cp "$ROOT/scripts/pjsua2/config_site.h" "$BUILD/pjlib/include/pj/config_site.h"
# The SWIG setup.py imports distutils (gone in Python 3.12): use setuptools, and give it our version.
SETUP="$BUILD/pjsip-apps/src/swig/python/setup.py"
sed -i -e 's/^from distutils.core import setup, Extension/from setuptools import setup, Extension/' \
       -e "s/^      version=pj_version,/      version=\"$WHEEL_VERSION\",/" "$SETUP"
grep -q "from setuptools import" "$SETUP" && grep -q "$WHEEL_VERSION" "$SETUP" || die "could not patch $SETUP"

step 5 "configuring (static, epoll, no sound/video, G.711/G.722/L16, OpenSSL 3)"
cd "$BUILD"
CFLAGS="-fPIC -O2" CXXFLAGS="-fPIC -O2" LDFLAGS="-s" ./configure "${CONFIGURE_ARGS[@]}" >configure.log 2>&1 \
    || { tail -30 configure.log; die "configure failed (log: $BUILD/configure.log)"; }
grep -q "SSL support enabled" configure.log || die "configure did not find OpenSSL (libssl-dev)"
grep -E "SSL support|SRTP will use|ioqueue backend" configure.log | sed 's/^/    /'

step 6 "compiling the libraries (make -j$JOBS; log: $BUILD/make.log)"
build_with_progress() {
    # print a line every 40 compiler invocations so a long build visibly moves
    "$@" 2>&1 | tee -a make.log | awk '/(^|[ \t])(gcc|g\+\+|cc|c\+\+) (.* )?-c /{n++; if (n%40==0) printf "    %d files compiled\n", n; fflush()} END{printf "    %d files compiled\n", n}'
    return "${PIPESTATUS[0]}"
}
: > make.log
echo "    dependencies"
make -j"$JOBS" dep >>make.log 2>&1 || { tail -30 make.log; die "make dep failed"; }
build_with_progress make -j"$JOBS" lib || { tail -30 make.log; die "make failed"; }

step 7 "generating the SWIG module and building the wheel"
cd "$BUILD/pjsip-apps/src/swig/python"
# -threads: every wrapped call releases the GIL (libHandleEvents waits without holding it)
# and callbacks re-take it, so the asyncio thread and pjsip's thread run side by side.
make USE_THREADS="-threads -DSWIG_NO_EXPORT_ITERATOR_METHODS" pjsua2_wrap.cpp >>"$BUILD/make.log" 2>&1 || { tail -30 "$BUILD/make.log"; die "swig failed"; }
rm -rf dist && mkdir -p dist
MAKE=make "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w dist . >>"$BUILD/make.log" 2>&1 \
    || { tail -30 "$BUILD/make.log"; die "building the wheel failed"; }
built=("$PWD"/dist/pjsua2-*.whl)
[ ${#built[@]} -eq 1 ] || die "expected one wheel in $(pwd)/dist"

step 8 "caching the wheel in var/wheels/"
cd "$VAR"   # not the build dir: its pjsua2.py/egg-info would shadow the installed module
mkdir -p "$WHEELS"
rm -f "$WHEELS"/pjsua2-*-"${PYTAG%%-*}"-*.whl   # older configurations for this Python
cp "${built[0]}" "$WHEELS/"
WHEEL="$WHEELS/$(basename "${built[0]}")"
echo "    $(du -h "$WHEEL" | cut -f1)  $(basename "$WHEEL")"
[ "$INSTALL" = 1 ] && install_wheel "$WHEEL"
echo "$WHEEL"
