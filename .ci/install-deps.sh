#!/usr/bin/env bash
# Installs the real components the tests use, on a fresh Debian machine. Idempotent and quiet: skips what is
# already there (apt packages by dpkg status, node modules by a stamp of package-lock.json).
#   apt: python3 (the stand-in trainer), chromium + python3-aiortc (interop peers), python3-websockets (with aiortc: the
#        classic Python peer tests/interop/classic_peer.py), mono-devel (runs the
#        netstandard2.0 builds the way Windows PowerShell 5.1 does; its Facades hold netstandard.dll), iproute2 + util-linux
#        (private network namespaces: ip, unshare, nsenter), redis-server (the shared store of a server cluster),
#        coturn (the TURN relay of the NAT tests), nodejs + npm when node is missing.
#   npm: tests/interop (npm ci from the committed package-lock.json: @roamhq/wrtc, node-datachannel, werift, ws).
#   dotnet: the pinned PowerShell tool (.config/dotnet-tools.json, run as `dotnet pwsh`), Pester from NuGet
#        (tests/PesterModule), the solution's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  for pkg in python3 chromium python3-aiortc python3-websockets mono-devel iproute2 util-linux redis-server coturn; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  command -v node >/dev/null || need+=(nodejs)
  command -v npm >/dev/null || need+=(npm)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
if [ -f tests/interop/package-lock.json ]; then
  stamp=tests/interop/node_modules/.installed-lock.sha256
  want=$(sha256sum tests/interop/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$stamp"
  fi
fi
dotnet tool restore >/dev/null
dotnet restore tests/PesterModule --verbosity quiet
dotnet restore SleapRtc.sln --verbosity quiet
