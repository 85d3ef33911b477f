#!/bin/bash
# The TURN test topology: four named network namespaces, nothing in them touching a real interface.
#   <p>-mid  coturn and the signaling server; 10.77.1.1 (towards the client) and 10.77.2.1 (towards the worker).
#            IP forwarding stays off, so the client and the worker cannot reach each other: only what the mid
#            namespace itself serves (coturn, the signaling server) is reachable from either side.
#   <p>-cli  a client: 10.77.1.2, default route to the mid namespace (UDP and TCP to coturn work).
#   <p>-wrk  a worker: 10.77.2.2, default route to the mid namespace.
#   <p>-tcp  a client whose network has no UDP path at all: no link to anything. It holds 10.77.1.1 on lo, and
#            tcp_forward.py relays only TCP (signaling, coturn TCP and TLS) from there into the mid namespace.
#   turn-topology.sh up <prefix>     create them (prints "ready")
#   turn-topology.sh down <prefix>   delete them
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "turn-topology.sh: needs root (ip netns)" >&2; exit 3; }
cmd=${1:-}; p=${2:-}
[ -n "$p" ] || { echo "usage: turn-topology.sh up|down <prefix>" >&2; exit 2; }

down() {
  for ns in "$p-mid" "$p-cli" "$p-wrk" "$p-tcp"; do ip netns del "$ns" 2>/dev/null || true; done
}

case "$cmd" in
  up)
    down
    for ns in mid cli wrk tcp; do
      ip netns add "$p-$ns"
      ip -n "$p-$ns" link set lo up
      ip netns exec "$p-$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
    done
    ip netns exec "$p-mid" sysctl -qw net.ipv4.ip_forward=0
    # veth names are per namespace once moved, but are created in this one first: keep them unique per prefix.
    tag=$(echo -n "$p" | md5sum | cut -c1-6)
    ip link add "tc$tag" type veth peer name "tm$tag"
    ip link set "tc$tag" netns "$p-cli"; ip link set "tm$tag" netns "$p-mid"
    ip -n "$p-cli" link set "tc$tag" name eth0; ip -n "$p-mid" link set "tm$tag" name toclient
    ip link add "tw$tag" type veth peer name "tx$tag"
    ip link set "tw$tag" netns "$p-wrk"; ip link set "tx$tag" netns "$p-mid"
    ip -n "$p-wrk" link set "tw$tag" name eth0; ip -n "$p-mid" link set "tx$tag" name toworker
    ip -n "$p-mid" addr add 10.77.1.1/24 dev toclient; ip -n "$p-mid" link set toclient up
    ip -n "$p-mid" addr add 10.77.2.1/24 dev toworker; ip -n "$p-mid" link set toworker up
    ip -n "$p-cli" addr add 10.77.1.2/24 dev eth0; ip -n "$p-cli" link set eth0 up
    ip -n "$p-cli" route add default via 10.77.1.1
    ip -n "$p-wrk" addr add 10.77.2.2/24 dev eth0; ip -n "$p-wrk" link set eth0 up
    ip -n "$p-wrk" route add default via 10.77.2.1
    ip -n "$p-tcp" addr add 10.77.1.1/32 dev lo
    echo ready
    ;;
  down) down ;;
  *) echo "usage: turn-topology.sh up|down <prefix>" >&2; exit 2 ;;
esac
