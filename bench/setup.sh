#!/usr/bin/env bash
# Installs what the benchmark compares edgeftp with, idempotently (a second run changes nothing):
#   - vsftpd from Debian (apt);
#   - pure-ftpd and proftpd-core, which conflict with vsftpd (each "provides ftp-server"), are
#     fetched with `apt-get download` and unpacked with `dpkg -x` into .bench/peers/, and their
#     runtime libraries (the lib* packages of their Depends, checked with ldd) installed with apt;
#   - ftp-srv from npm as a dev dependency;
#   - one local user for the peers that authenticate system users (vsftpd, pure-ftpd, proftpd),
#     with the same name and password as the edgeftp account, whose home is the common root;
#   - that edgeftp account (needs `npm run build` first: dist/src/cli.cjs);
#   - null-ftpd (bench/null-ftpd.c, compiled with cc): the ceiling of the small-file rows.
# A peer that cannot be installed is reported and skipped (exit status stays 0); bench/run.ts then
# marks it as not started in the table. Needs root (apt, useradd).
set -uo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=bench/bench.env
source bench/bench.env
ROOT=${BENCH_ROOT:-$BENCH_ROOT_DEFAULT}
PEERS=$REPO/.bench/peers
EDGE_DATA=$REPO/.bench/edgeftp-data
# The local user's password: random, made once per machine, readable by root only.
mkdir -p "$REPO/.bench"
if ! [ -s "$REPO/.bench/password" ]; then
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$REPO/.bench/password")
fi
BENCH_PASSWORD=$(cat "$REPO/.bench/password")

say() { printf 'bench/setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  say "needs root (apt-get, useradd); run it as root"
  exit 1
fi

APT_UPDATED=0
apt_install() {
  # Installs the named packages that are not installed yet; apt-get update once, only if needed.
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $APT_UPDATED -eq 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed (continuing with the lists we have)"
    APT_UPDATED=1
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# 1. vsftpd, the Debian way, but not as a system service: its package starts one listening on every
#    address with local logins (and fails to install when port 21 is taken). policy-rc.d keeps the
#    package scripts from starting it; the benchmark runs its own on loopback.
if ! [ -x /usr/sbin/vsftpd ]; then
  POLICY=/usr/sbin/policy-rc.d
  OWN_POLICY=0
  if ! [ -e $POLICY ]; then
    printf '#!/bin/sh\nexit 101\n' >$POLICY && chmod 755 $POLICY && OWN_POLICY=1
  fi
  apt_install vsftpd || say "vsftpd could not be installed; it will be skipped"
  [ $OWN_POLICY -eq 1 ] && rm -f $POLICY
fi
# Installed before this script took care (or by hand): not left running or enabled.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled vsftpd >/dev/null 2>&1; then
  systemctl disable --now vsftpd >/dev/null 2>&1 && say "the system's vsftpd service disabled (the benchmark runs its own)"
fi

# 2. pure-ftpd and proftpd-core, unpacked beside the tree (they conflict with vsftpd as packages).
unpack_peer() {
  local pkg=$1 binary=$2
  local dest=$PEERS/$pkg
  if [ -f "$dest/.installed" ] && [ -x "$dest$binary" ] && ! ldd "$dest$binary" | grep -q 'not found'; then
    return 0
  fi
  mkdir -p "$PEERS/debs"
  rm -rf "$dest"
  local deb
  deb=$(ls "$PEERS"/debs/"${pkg}"_*.deb 2>/dev/null | head -n 1)
  if [ -z "$deb" ]; then
    if [ $APT_UPDATED -eq 0 ]; then apt-get update -qq >/dev/null 2>&1; APT_UPDATED=1; fi
    # apt's sandbox user cannot write into a root-owned directory: download to a temporary one.
    local tmp
    tmp=$(mktemp -d)
    chmod 777 "$tmp"
    (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>&1) || { rm -rf "$tmp"; say "apt-get download $pkg failed"; return 1; }
    mv "$tmp"/*.deb "$PEERS/debs/" && rm -rf "$tmp"
    deb=$(ls "$PEERS"/debs/"${pkg}"_*.deb | head -n 1)
  fi
  dpkg -x "$deb" "$dest" || { say "dpkg -x $deb failed"; return 1; }
  # Runtime libraries: the lib* packages among its Depends (versions and alternatives dropped).
  local libs
  libs=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/ //g' | grep '^lib' || true)
  # shellcheck disable=SC2086
  [ -n "$libs" ] && { apt_install $libs || say "some libraries of $pkg could not be installed"; }
  if ldd "$dest$binary" | grep 'not found' >&2; then
    say "$pkg: libraries still missing (above); it will be skipped"
    return 1
  fi
  touch "$dest/.installed"
  say "$pkg unpacked into ${dest#"$REPO"/}"
}
unpack_peer pure-ftpd /usr/sbin/pure-ftpd || true
unpack_peer proftpd-core /usr/sbin/proftpd || true

# 3. ftp-srv (Node), a dev dependency.
if ! node -e 'require.resolve("ftp-srv")' >/dev/null 2>&1; then
  if grep -q '"ftp-srv"' package.json; then
    npm install --no-audit --no-fund >/dev/null || say "npm install failed; ftp-srv will be skipped"
  else
    npm install --save-dev --no-audit --no-fund ftp-srv >/dev/null || say "npm install ftp-srv failed; it will be skipped"
  fi
fi

# 4. null-ftpd, the small-file rows' ceiling (bench/null-ftpd.c: the protocol and nothing behind it).
mkdir -p "$PEERS"
if ! [ -x "$PEERS/null-ftpd" ] || [ bench/null-ftpd.c -nt "$PEERS/null-ftpd" ]; then
  cc -O2 -Wall -o "$PEERS/null-ftpd" bench/null-ftpd.c || say "null-ftpd did not compile; the ceiling column will be empty"
fi

# 5. The common root and the local user the system-account peers log in as.
mkdir -p "$ROOT"
if ! id "$BENCH_USER" >/dev/null 2>&1; then
  useradd --no-create-home --home-dir "$ROOT" --shell /bin/bash --comment "edgeftp benchmark" "$BENCH_USER"
  say "local user $BENCH_USER created"
elif [ "$(getent passwd "$BENCH_USER" | cut -d: -f6)" != "$ROOT" ]; then
  usermod --home "$ROOT" "$BENCH_USER"
fi
# SHA-512 crypt, as /etc/login.defs' ENCRYPT_METHOD says (PAM's chpasswd would pick yescrypt,
# ~24 ms of CPU per login here, and turn the session rows into a password-hashing benchmark).
# BENCH_CRYPT_METHOD=YESCRYPT (or MD5, SHA256...) chooses another.
echo "$BENCH_USER:$BENCH_PASSWORD" | chpasswd --crypt-method "${BENCH_CRYPT_METHOD:-SHA512}"
chown "$BENCH_USER:" "$ROOT"
chmod 755 "$ROOT"

# 6. The edgeftp account, same name and password, rooted at the same directory.
if [ -f dist/src/cli.cjs ]; then
  CLI=(node dist/src/cli.cjs)
  "${CLI[@]}" user add "$BENCH_USER" --home "$ROOT" --if-missing --password-stdin --data-dir "$EDGE_DATA" \
    <<<"$BENCH_PASSWORD" >/dev/null || say "edgeftp user add failed"
  "${CLI[@]}" user passwd "$BENCH_USER" --password-stdin --data-dir "$EDGE_DATA" <<<"$BENCH_PASSWORD" >/dev/null ||
    say "edgeftp user passwd failed"
  "${CLI[@]}" user set "$BENCH_USER" --home "$ROOT" --data-dir "$EDGE_DATA" >/dev/null || say "edgeftp user set failed"
  # The benchmark runs edgeftp as this user (as the forking peers run their sessions).
  chown -R "$BENCH_USER:" "$EDGE_DATA"
else
  say "dist/src/cli.cjs missing: run 'npm run build' first (the edgeftp account is not set up)"
fi
say "ready (root $ROOT)"
