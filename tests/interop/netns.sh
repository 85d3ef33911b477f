#!/bin/bash
# Private network namespace for interop runs: only lo plus a veth pair 10.99.0.1 <-> 10.99.0.2, IPv6 off,
# and a default route into the veth so Chromium gathers host candidates (it never gathers 127.0.0.1 and
# gathers nothing without a default route). Nothing in it can reach a real interface or another host.
#   netns.sh run CMD...   run CMD inside a fresh namespace
#   netns.sh hold         set one up, print "ready <pid>", keep it until stdin closes; other processes join
#                         it with: nsenter --net=/proc/<pid>/ns/net CMD...
#   netns.sh hold one-address   the same with 10.99.0.1 as the only address besides lo, for a peer that must
#                         send from one address (through the impairment relay, which latches one source per side)
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "netns.sh: needs root (unshare -n, veth)" >&2; exit 3; }

setup='ip link set lo up
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
ip link add v0 type veth peer name v1
ip addr add 10.99.0.1/24 dev v0
ip addr add 10.99.0.2/24 dev v1
ip link set v0 up
ip link set v1 up
ip route add default via 10.99.0.2 dev v0'
if [ "${2:-}" = one-address ]; then
  setup="${setup/ip addr add 10.99.0.2\/24 dev v1
/}"
  setup="${setup/default via 10.99.0.2 dev v0/default dev v0}"
fi

case "${1:-}" in
  run)
    shift
    exec unshare -n bash -c "$setup"'
exec "$@"' netns "$@"
    ;;
  hold)
    # exec keeps one pid from unshare to cat, so /proc/<pid>/ns/net names the namespace.
    exec unshare -n bash -c "$setup"'
echo "ready $$"
exec cat >/dev/null'
    ;;
  *)
    echo "usage: netns.sh run CMD... | netns.sh hold" >&2
    exit 2
    ;;
esac
