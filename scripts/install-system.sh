#!/bin/sh
# Install the Debian packages confbot needs (run as root on a fresh machine).
# Idempotent: does nothing when every package is already installed.
#   - python3-venv, python3-dev: a venv and Python.h for Debian's own Python 3.11
#   - dovecot-*, sip-tester, baresip, swaks, sox: real peers for the test suite
#   - espeak-ng: the prompt voice (pyttsx3); build tools + swig + libssl-dev: the pjsua2 build
set -eu
PKGS="python3 python3-venv python3-dev make
      dovecot-imapd dovecot-lmtpd sip-tester baresip espeak-ng libespeak-ng1 swaks sox
      build-essential swig libssl-dev pkg-config patch dpkg-dev xz-utils ca-certificates openssl"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "==> installing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "error: installing packages needs root (missing:$missing)" >&2; exit 1
fi
had_dovecot=no
dpkg-query -W -f='${Status}' dovecot-core 2>/dev/null | grep -q "install ok installed" && had_dovecot=yes
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
# The tests run their own Dovecot from a temp dir. When this run is what brought Dovecot onto the
# machine, its packaged system instance is not wanted: disable it. A Dovecot that was here
# before (a real mail server) is never touched.
if [ "$had_dovecot" = no ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now dovecot >/dev/null 2>&1 || true
fi
