#!/usr/bin/env bash
# bench/dropin.sh [--quick]: what drop-in capture costs, and what the
# members' own TLS inside the tunnel costs, measured in ONE run with
# alternating rounds; writes bench/RESULTS-dropin.md. Needs root: every pair
# runs between two network namespaces this script makes (a veth pair each),
# so its traffic crosses a real interface and the nftables rules, as it does
# between two pods. See bench/README.md, "Drop-in pairs".
#
# Namespaces gwb-la/gwb-lb (10.98.0.1, .2) carry the pairs with no rules:
#   direct       the client dials b's real address: plaintext, the floor
#   member-tls   stunnel → stunnel over the veth: the members' own TLS alone
#   gw-loopback  groupwire in loopback mode: the client dials 127.0.0.1
# Namespaces gwb-da/gwb-db (10.99.0.1, .2) run groupwire in drop-in mode:
#   gw-dropin             the client dials b's real address, captured
#   gw-dropin+member-tls  stunnel → stunnel, captured: TLS inside the tunnel
#
# Environment as bench/run.sh: ROUNDS, DURATION, TESTS, PAIRS, OUT, GW_BIN,
# GW_TREE.
set -euo pipefail

QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
if ((QUICK)); then
	ROUNDS=${ROUNDS:-1}
	DURATION=${DURATION:-1s}
else
	ROUNDS=${ROUNDS:-3}
	DURATION=${DURATION:-3s}
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/bench/RESULTS-dropin.md}
TESTS=${TESTS:-"bulk-up-1 bulk-down-1 pp-1 pp-16 connect"}
WORK=$(mktemp -d /tmp/gwdropin.XXXXXX)
SVC=7002   # member b's service port, the same on every member (drop-in)
INNER=7003 # b's TLS service port: stunnel's server, the member's own TLS
NAMESPACES=(gwb-la gwb-lb gwb-da gwb-db)
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
cleanup_extra() {
	local ns
	for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

((EUID == 0)) || { log "bench/dropin.sh makes network namespaces: run it as root"; exit 1; }
need stunnel4 stunnel4
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
build_tools "$ROOT"
"$GW" certs init --dir "$WORK/pki" --members a,b >/dev/null
PKI=$WORK/pki

# netns_pair A B NET: two namespaces joined by a veth, A at NET.1, B at NET.2.
netns_pair() {
	ip netns del "$1" 2>/dev/null || true
	ip netns del "$2" 2>/dev/null || true
	ip netns add "$1"
	ip netns add "$2"
	ip link add "v-$1" netns "$1" type veth peer name "v-$2" netns "$2"
	ip -n "$1" addr add "$3.1/24" dev "v-$1"
	ip -n "$2" addr add "$3.2/24" dev "v-$2"
	local ns
	for ns in "$1" "$2"; do
		ip -n "$ns" link set lo up
		ip -n "$ns" link set "v-$ns" up
	done
}
netns_pair gwb-la gwb-lb 10.98.0
netns_pair gwb-da gwb-db 10.99.0

# inns NS CMD...: run CMD in network namespace NS.
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# wait_port NS HOST PORT: until something listens there (at most 10 s);
# HOST '*' means on any address.
wait_port() {
	local filter="src $2:$3"
	[[ $2 == '*' ]] && filter="sport = :$3"
	for _ in $(seq 100); do
		inns "$1" ss -Hltn "$filter" | grep -q . && return 0
		sleep 0.1
	done
	log "nothing listens on $2:$3 in $1; logs:"
	tail -n 20 "$WORK"/*.log >&2
	exit 1
}

# --- the servers: member b's service, on its real address and on loopback
start sink-l ip netns exec gwb-lb "$WORK/gwload" serve -listen "10.98.0.2:$SVC,127.0.0.1:$SVC"
start sink-d ip netns exec gwb-db "$WORK/gwload" serve -listen "10.99.0.2:$SVC,127.0.0.1:$SVC"

# --- the members' own TLS: stunnel, OpenSSL, as MariaDB and MySQL use -----
stunnelconf() { # stunnelconf SIDE NET
	printf 'foreground = yes\npid =\ndebug = warning\n[member]\nCAfile = %s\nverifyChain = yes\n' "$PKI/ca.pem"
	printf 'sslVersionMin = TLSv1.3\nciphersuites = TLS_AES_128_GCM_SHA256\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n'
	if [[ $1 == a ]]; then
		printf 'client = yes\naccept = 127.0.0.1:%s\nconnect = %s.2:%s\ncert = %s\nkey = %s\ncheckHost = b\n' \
			"$INNER" "$2" "$INNER" "$PKI/a.pem" "$PKI/a-key.pem"
	else
		printf 'accept = %s.2:%s\nconnect = 127.0.0.1:%s\ncert = %s\nkey = %s\ncheckHost = a\n' \
			"$2" "$INNER" "$SVC" "$PKI/b.pem" "$PKI/b-key.pem"
	fi
}
for side in l d; do
	net=10.98.0
	[[ $side == d ]] && net=10.99.0
	for m in a b; do
		stunnelconf $m $net >"$WORK/stunnel-$side$m.conf"
		start "stunnel-$side$m" ip netns exec "gwb-$side$m" stunnel4 "$WORK/stunnel-$side$m.conf"
	done
done

# --- groupwire: the same TLS as bench/run.sh's gw-verify ------------------
gwtls() { gw_tls "  tls_version: TLSv1.3" "  tls_ciphersuites: TLS_AES_128_GCM_SHA256"; }
{
	echo "group: bench-loopback"
	gwtls
	echo "channels: {group: {}}"
	echo "members:"
	echo "  a: {address: \"10.98.0.1:24900\", identity: a, local_ip: 127.0.0.1, ports: {group: 7001}}"
	echo "  b: {address: \"10.98.0.2:24900\", identity: b, local_ip: 127.0.0.1, ports: {group: $SVC}}"
} >"$WORK/gw-loopback.yaml"
{
	echo "group: bench-dropin"
	echo "capture: transparent"
	echo "admin: \"127.0.0.1:9900\""
	gwtls
	echo "channels: {group: {}, inner: {}}"
	echo "members:"
	echo "  a: {address: \"10.99.0.1:24900\", identity: a, ports: {group: $SVC, inner: $INNER}}"
	echo "  b: {address: \"10.99.0.2:24900\", identity: b, ports: {group: $SVC, inner: $INNER}}"
} >"$WORK/gw-dropin.yaml"
for side in l d; do
	cfg=$WORK/gw-loopback.yaml
	[[ $side == d ]] && cfg=$WORK/gw-dropin.yaml
	for m in a b; do
		start "gw-$side$m" ip netns exec "gwb-$side$m" "$GW" run --config "$cfg" --member $m --log-level warn --log-format json
	done
done

declare -A ENTRY PROCS NS
ENTRY[direct]=10.98.0.2:$SVC NS[direct]=gwb-la PROCS[direct]=""
ENTRY[member-tls]=127.0.0.1:$INNER NS[member-tls]=gwb-la
PROCS[member-tls]="$(pid_of stunnel-la),$(pid_of stunnel-lb)"
ENTRY[gw-loopback]=127.0.0.1:$SVC NS[gw-loopback]=gwb-la
PROCS[gw-loopback]="$(pid_of gw-la),$(pid_of gw-lb)"
ENTRY[gw-dropin]=10.99.0.2:$SVC NS[gw-dropin]=gwb-da
PROCS[gw-dropin]="$(pid_of gw-da),$(pid_of gw-db)"
ENTRY[gw-dropin+member-tls]=127.0.0.1:$INNER NS[gw-dropin+member-tls]=gwb-da
PROCS[gw-dropin+member-tls]="${PROCS[gw-dropin]},$(pid_of stunnel-da),$(pid_of stunnel-db)"
ALL_PAIRS="direct member-tls gw-loopback gw-dropin gw-dropin+member-tls"
PAIRS=${PAIRS:-$ALL_PAIRS}

wait_port gwb-lb 10.98.0.2 $SVC
wait_port gwb-db 10.99.0.2 $SVC
wait_port gwb-la 127.0.0.1 $SVC       # groupwire a, loopback mode: b's port
wait_port gwb-la 127.0.0.1 $INNER
wait_port gwb-da 127.0.0.1 $INNER
wait_port gwb-da 127.0.0.1 24901      # groupwire a, drop-in: the capture port
wait_port gwb-db '*' 24900            # groupwire b's link port, all interfaces

# Before measuring, prove the drop-in pair really runs through groupwire:
# a dial of b's real address from a's namespace must end as a link that b's
# sidecar accepted, counted in its metrics.
inns gwb-da "$WORK/gwload" run -pair probe -test pp-1 -duration 100ms -target "10.99.0.2:$SVC" >/dev/null
metrics() { # metrics NS: the sidecar's /metrics, over its admin address
	inns "$1" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9900 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3'
}
for _ in $(seq 150); do
	metrics gwb-db 2>/dev/null | grep -q '^groupwire_links_total{.*direction="in".*outcome="ok"' && break
	sleep 0.1
done
metrics gwb-db | grep -q '^groupwire_links_total{.*direction="in".*outcome="ok"' || {
	log "the drop-in pair's traffic did not run through groupwire; b's link metrics and the logs:"
	metrics gwb-db | grep '^groupwire_links' >&2 || true
	tail -n 20 "$WORK"/gw-d*.log >&2
	exit 1
}

RESULTS=$WORK/results.jsonl
read -r -a order <<<"$PAIRS"
log "$ROUNDS round(s) of $DURATION per test; pairs: $PAIRS"
for round in $(seq "$ROUNDS"); do
	for test in $TESTS; do
		for pair in "${order[@]}"; do
			log "round $round: $test via $pair"
			if ! inns "${NS[$pair]}" "$WORK/gwload" run -pair "$pair" -round "$round" -test "$test" \
				-target "${ENTRY[$pair]}" -duration "$DURATION" -pids "${PROCS[$pair]}" >>"$RESULTS"; then
				log "FAILED: $test via $pair (see the logs in $WORK, kept until exit)"
			fi
			sleep 0.2
		done
	done
	order=("${order[@]:1}" "${order[0]}")
done

{
	echo "- mode: $( ((QUICK)) && echo quick || echo full ), $ROUNDS round(s), $DURATION per timed test"
	echo "- every pair between two network namespaces joined by a veth pair (MTU 1500)"
	echo "- stunnel (the members' own TLS): $(stunnel4 -version 2>&1 | sed -n 's/^stunnel \([^ ]*\).*/\1/p' | head -1), $(stunnel4 -version 2>&1 | grep -o 'OpenSSL [0-9.]*' | head -1), TLS 1.3 AES-128-GCM, chain and name verified"
	echo "- groupwire: ${GW_BIN:-$REV}, VERIFY_IDENTITY, TLS 1.3 AES-128-GCM, CRL loaded, at warn"
	echo "- CPU columns count every process on the path: both sidecars, and both stunnels where the pair has them"
} >"$WORK/notes.md"
report "$PAIRS" "groupwire drop-in benchmark" bench/dropin.sh \
	"gw-dropin/gw-loopback,gw-dropin+member-tls/gw-dropin,gw-dropin+member-tls/member-tls"
