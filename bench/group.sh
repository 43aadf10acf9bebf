#!/usr/bin/env bash
# bench/group.sh: what groupwire costs a real group against the database's
# own TLS. A three-member etcd cluster (Debian's etcd 3.4) runs in network
# namespaces on a bridge, data on tmpfs, once per configuration and round
# (rounds alternate), and bench/cmd/gwetcd puts 256-byte values with 8
# writers through the leader, twice: as fast as the cluster acknowledges
# (on this one host that measures CPU: the whole group and its tunnels
# share it), then paced at RATE puts/s (the latency at a load the host
# carries with CPU to spare, as a group's own machines do). Both report the
# host's and the tunnels' CPU per put. Writes bench/RESULTS-group.md.
# Needs root.
#
# Configurations:
#   plain        etcd's peer URLs in http, no TLS: the floor
#   etcd-tls     etcd's own peer TLS: https peer URLs, --peer-client-cert-auth,
#                --peer-crl-file (the reference)
#   gw-dropin    etcd as plain, behind drop-in groupwire (VERIFY_IDENTITY, CRL)
#   gw-loopback  etcd's peers on 127.0.0.1:238N, groupwire in loopback mode
#   haproxy      the same loopback scheme with a mesh of haproxy mTLS tunnels
#                (verify required, verifyhost, CRL): the best peer's mesh
#   gw-dropin-pN, gw-loopback-pN  the same with the sidecars at GOMAXPROCS=N
#                (not in the default set)
#
# Environment: ROUNDS (2), DURATION (10s, in seconds), WRITERS (8), RATE (500;
# 0 skips the paced load), PPROF (1: e1's sidecar serves /debug/pprof/ and
# round 1 of each groupwire configuration writes go tool pprof's top of it,
# flat out, to bench/PROFILE-etcd-CONFIG.txt), CONFIGS (a subset),
# RATIOS (the report's PAIR/REF tables, comma-separated), OUT, GW_BIN, GW_TREE (as bench/run.sh); BASE (a git revision) builds
# groupwire at it too, and adds gw-dropin-base and gw-loopback-base: an A/B
# in one run.
set -euo pipefail

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
WRITERS=${WRITERS:-8}
RATE=${RATE:-500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/bench/RESULTS-group.md}
CONFIGS=${CONFIGS:-"plain etcd-tls gw-dropin gw-loopback haproxy"}
WORK=$(mktemp -d /tmp/gwgroup.XXXXXX)
MEMBERS=(e1 e2 e3)
NET=10.97.0
NS=gwg # the namespaces: gwg-sw (the bridge), gwg-e1 ...
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
group_bench_setup bench/group.sh
need etcd etcd-server
need etcdctl etcd-client
need haproxy haproxy
build_tools "$ROOT"
(cd "$SRC" && go build -o "$WORK/gwetcd" ./bench/cmd/gwetcd)
if [[ -n "${BASE:-}" ]]; then
	mkdir -p "$WORK/base"
	(cd "$ROOT" && git archive "$BASE") | tar -x -C "$WORK/base"
	(cd "$WORK/base" && go build -o "$WORK/groupwire-base" .)
	GW_BASE=$WORK/groupwire-base
	CONFIGS="$CONFIGS gw-dropin-base gw-loopback-base"
fi
PKI=$WORK/pki
"$GW" certs init --dir "$PKI" --members e1,e2,e3 --ip e1=$NET.1 --ip e2=$NET.2 --ip e3=$NET.3 >/dev/null
haproxy_pems
mkdir -p "$WORK/data"
mount -t tmpfs -o size=512m tmpfs "$WORK/data" # the network is measured, not fsync

peerport() { echo "238${1#e}"; }   # the loopback scheme's per-member port

# start_etcd CONFIG M: member M's etcd as CONFIG has it.
start_etcd() {
	local cfg=$1 m=$2 scheme=http host initial=() args=()
	host=$(addr "$m")
	[[ $cfg == etcd-tls ]] && scheme=https
	local p
	for p in "${MEMBERS[@]}"; do
		case $cfg in
		gw-loopback | haproxy) initial+=("$p=http://127.0.0.1:$(peerport "$p")") ;;
		*) initial+=("$p=$scheme://$(addr "$p"):2380") ;;
		esac
	done
	local peer="$scheme://$host:2380"
	[[ $cfg == gw-loopback || $cfg == haproxy ]] && peer="http://127.0.0.1:$(peerport "$m")"
	if [[ $cfg == etcd-tls ]]; then
		args=(--peer-cert-file "$PKI/$m.pem" --peer-key-file "$PKI/$m-key.pem" --peer-trusted-ca-file "$PKI/ca.pem"
			--peer-client-cert-auth --peer-crl-file "$PKI/crl.pem")
	fi
	rm -rf "$WORK/data/$m"
	start "etcd-$m" ip netns exec "$NS-$m" etcd --name "$m" --data-dir "$WORK/data/$m" \
		--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--initial-cluster "$(IFS=,; echo "${initial[*]}")" --initial-cluster-state new --initial-cluster-token gwbench \
		--heartbeat-interval 100 --election-timeout 1000 --logger zap --log-level error "${args[@]}"
}

# gw_file MODE: the cluster file of groupwire's configuration MODE.
gw_file() {
	echo "group: bench-etcd"
	[[ $1 == gw-dropin ]] && echo "capture: transparent"
	[[ ${PPROF:-} == 1 ]] && echo 'admin: "127.0.0.1:9900"' # in each member's namespace
	gw_tls
	printf 'channels: {peer: {}}\nmembers:\n'
	local m
	for m in "${MEMBERS[@]}"; do
		if [[ $1 == gw-dropin ]]; then
			echo "  $m: {address: \"$(addr "$m"):24900\", identity: $m, ports: {peer: 2380}}"
		else
			echo "  $m: {address: \"$(addr "$m"):24900\", identity: $m, local_ip: 127.0.0.1, ports: {peer: $(peerport "$m")}}"
		fi
	done
}

# haproxy_conf M: member M's haproxy: a frontend on 127.0.0.1 per peer that
# tunnels to the peer's haproxy over mTLS, and one that takes the peers'.
haproxy_conf() {
	local m=$1 p
	haproxy_head
	for p in "${MEMBERS[@]}"; do
		[[ $p == "$m" ]] && continue
		haproxy_out "$m" "to-$p" "$(peerport "$p")" "$p" "$(addr "$p"):24900"
	done
	haproxy_in "$m" from-peers "$(addr "$m"):24900" "$(peerport "$m")"
}

# start_config CONFIG: the topology, the tunnels and the etcd cluster.
start_config() {
	local cfg=$1 m
	new_topology
	local bin=$GW
	[[ $cfg == *-base ]] && bin=$GW_BASE cfg=${cfg%-base}
	local gwenv=(env) # gw-*-pN: the same, with the sidecars at GOMAXPROCS=N
	[[ $cfg =~ -p([0-9]+)$ ]] && gwenv+=("GOMAXPROCS=${BASH_REMATCH[1]}") cfg=${cfg%-p*}
	[[ ${PPROF:-} == 1 ]] && gwenv+=(GROUPWIRE_PPROF=1)
	case $cfg in
	gw-dropin | gw-loopback)
		gw_file "$cfg" >"$WORK/$cfg.yaml"
		for m in "${MEMBERS[@]}"; do
			start "gw-$m" ip netns exec "$NS-$m" "${gwenv[@]}" "$bin" run --config "$WORK/$cfg.yaml" --member "$m" --log-level warn --log-format json
		done
		for m in "${MEMBERS[@]}"; do wait_listen "$m" 24900; done
		;;
	haproxy)
		for m in "${MEMBERS[@]}"; do
			haproxy_conf "$m" >"$WORK/haproxy-$m.cfg"
			start "haproxy-$m" ip netns exec "$NS-$m" haproxy -db -f "$WORK/haproxy-$m.cfg"
		done
		for m in "${MEMBERS[@]}"; do wait_listen "$m" 24900; done
		;;
	esac
	for m in "${MEMBERS[@]}"; do start_etcd "$cfg" "$m"; done
	for m in "${MEMBERS[@]}"; do wait_healthy "$m"; done
	lead_from e1
}

ctl() { local m=$1; shift; ip netns exec "$NS-$m" etcdctl --endpoints=http://127.0.0.1:2379 --command-timeout=5s "$@"; }

wait_healthy() { # a linearizable read on M needs the leader, so the peer links
	for _ in $(seq 300); do
		ctl "$1" get probe --consistency=l >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	log "etcd $1 never served a linearizable read"; tail -n 20 "$WORK"/*.log >&2; exit 1
}

lead_from() { # make member $1 the leader: the writers put through it
	local id m
	id=$(ctl "$1" endpoint status | cut -d, -f2 | tr -d ' ') # the member ID, in hex
	for _ in $(seq 50); do
		[[ $(ctl "$1" endpoint status | cut -d, -f5 | tr -d ' ') == true ]] && return 0
		for m in "${MEMBERS[@]}"; do ctl "$m" move-leader "$id" >/dev/null 2>&1 && break; done
		sleep 0.2
	done
	log "could not make $1 the leader"; exit 1
}

# go tool pprof is built on first use: not while a load runs
[[ ${PPROF:-} != 1 ]] || go tool pprof -h >/dev/null 2>&1 || true
RESULTS=$WORK/results.jsonl
log "$ROUNDS round(s) of $DURATION, $WRITERS writers; configurations: $CONFIGS"
# put CONFIG ROUND: the writers as fast as they are acknowledged, then paced
# at RATE (0 skips the paced load).
put() {
	local load=(ip netns exec "$NS-e1" "$WORK/gwetcd" -pair "$1" -round "$2" -duration "$DURATION"
		-writers "$WRITERS" -tunnels "$(tunnel_pids "$1")")
	local prof=""
	if [[ ${PPROF:-} == 1 && $1 == gw-* && $2 == 1 ]]; then
		ip netns exec "$NS-e1" go tool pprof -top -nodecount 45 -seconds $((${DURATION%s} - 2)) \
			http://127.0.0.1:9900/debug/pprof/profile >"$WORK/pprof-$1.txt" 2>&1 &
		prof=$!
	fi
	"${load[@]}" || return 1
	[[ -z $prof ]] || pprof_top "$1" "$prof"
	((RATE == 0)) || "${load[@]}" -rate "$RATE"
}

# pprof_top CONFIG PID: wait for the profile of e1's sidecar (the leader's)
# that PID fetches, and write it to bench/PROFILE-etcd-CONFIG.txt.
pprof_top() {
	wait "$2" || log "pprof of e1's sidecar ($1) failed: $(tail -n 3 "$WORK/pprof-$1.txt")"
	{
		echo "# go tool pprof -top of e1's sidecar (the leader's; $1), flat out, $WRITERS writers, $((${DURATION%s} - 2)) s; groupwire $REV"
		cat "$WORK/pprof-$1.txt"
	} >"$ROOT/bench/PROFILE-etcd-$1.txt"
	log "wrote bench/PROFILE-etcd-$1.txt"
}
alternate "$CONFIGS" put

{
	paced="; then the same paced at $RATE puts/s in all (rows marked paced), each put timed from when it was due"
	((RATE != 0)) || paced=""
	echo "- $ROUNDS round(s) of $DURATION, $WRITERS writers putting 256-byte values through the leader (e1), data on tmpfs$paced"
	echo "- three members in network namespaces on a bridge (veth, MTU 1500); heartbeat 100 ms, election timeout 1 s"
	echo "- etcd: $(etcd --version 2>/dev/null | head -1); haproxy: $(haproxy -v 2>&1 | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p')"
	echo "- groupwire: ${GW_BIN:-$REV}, VERIFY_IDENTITY with a CRL, at warn"
} >"$WORK/notes.md"
report "$CONFIGS" "groupwire group-workload benchmark: etcd" bench/group.sh \
	"${RATIOS:-gw-dropin/etcd-tls,gw-loopback/etcd-tls,haproxy/etcd-tls,gw-dropin/haproxy,gw-loopback/haproxy}"
