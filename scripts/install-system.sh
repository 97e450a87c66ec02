#!/bin/sh
# Install the Debian packages confbot needs (run as root on a fresh machine).
# Idempotent: does nothing when every package is already installed.
set -eu
PKGS="dovecot-imapd dovecot-lmtpd sip-tester baresip espeak-ng libespeak-ng1 swaks sox
      build-essential swig libssl-dev pkg-config dpkg-dev xz-utils ca-certificates"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "==> installing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "error: installing packages needs root (missing:$missing)" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
# Dovecot's package starts a system instance; tests run their own from a temp dir.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now dovecot >/dev/null 2>&1 || true; fi
pkill -x dovecot 2>/dev/null || true
