#!/usr/bin/env bash
# bench/galera.sh: what groupwire costs MariaDB Galera against Galera's own
# TLS. Three nodes in network namespaces on a bridge, data on tmpfs, formed
# afresh for each configuration and round (rounds alternate); sysbench
# oltp_write_only with 8 threads on g1, twice: as fast as the group commits
# (on this one host that measures CPU: the whole group and its tunnels
# share it), then paced at RATE transactions/s (the latency at a load the
# host carries with CPU to spare, as a group's own machines do). Both
# report the host's and the tunnels' CPU per transaction. Writes
# bench/RESULTS-galera.md. Needs root.
#
# Configurations:
#   plain      gcomm in plaintext: the floor
#   galera-ssl Galera's own socket.ssl (the CA, each node's certificate and
#              key): the reference
#   gw-dropin  gcomm as plain, behind drop-in groupwire (VERIFY_IDENTITY, CRL)
#   gw-loopback  the loopback scheme: each node listens on 127.0.0.1 at ports
#              of its own (gcomm 4567, 4667, 4767; IST and SST likewise) and
#              reaches its peers at 127.0.0.1, through loopback-mode groupwire
#   haproxy    the same loopback scheme through a mesh of haproxy mTLS tunnels
#              (TLS 1.3, the same CA, certificates and CRL)
#   gw-dropin-pN, gw-loopback-pN  the same with the sidecars at GOMAXPROCS=N
#              (not in the default set)
#
# Environment: ROUNDS (2), DURATION (10, seconds), THREADS (8), RATE (300;
# 0 skips the paced load), CONFIGS,
# RATIOS (the report's PAIR/REF tables, comma-separated), OUT, GW_BIN,
# GW_TREE (as bench/run.sh). PERF=1 records g1's sidecar with
# perf (999 Hz, call graphs) during the first round of each groupwire
# configuration and writes the top of the profile to
# bench/PROFILE-galera-CONFIG.txt.
set -euo pipefail

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10}
THREADS=${THREADS:-8}
RATE=${RATE:-300}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/bench/RESULTS-galera.md}
CONFIGS=${CONFIGS:-"plain galera-ssl gw-dropin gw-loopback haproxy"}
WORK=$(mktemp -d /tmp/gwgalera.XXXXXX)
MEMBERS=(g1 g2 g3)
NET=10.95.0
NS=gwb # the namespaces: gwb-sw (the bridge), gwb-g1 ...
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
group_bench_setup bench/galera.sh
if ! command -v mariadbd >/dev/null || [[ ! -e /usr/lib/galera/libgalera_smm.so ]]; then
	mkdir -p /usr/sbin && printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
	need mariadbd mariadb-server
	need rsync rsync
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq galera-4 >/dev/null
	rm -f /usr/sbin/policy-rc.d # the packaged server stays stopped: the benchmark runs its own
fi
need sysbench sysbench
need haproxy haproxy
build_tools "$ROOT"
mkdir -p "$WORK/data"
mount -t tmpfs -o size=1g tmpfs "$WORK/data" # the network is measured, not fsync
chmod 755 "$WORK" "$WORK/data"
PKI=$WORK/data/pki # readable by mysql: Galera's socket.ssl reads it
"$GW" certs init --dir "$PKI" --members g1,g2,g3 --ip g1=$NET.1 --ip g2=$NET.2 --ip g3=$NET.3 >/dev/null
haproxy_pems
chown -R mysql:mysql "$PKI"

# port N CHANNEL: node N's port for a channel in the loopback scheme, where
# every node listens on 127.0.0.1 at ports of its own.
port() {
	local i=$((${1//[!0-9]/} - 1))
	case $2 in
	gcomm) echo $((4567 + 100 * i)) ;;
	ist) echo $((4568 + 100 * i)) ;;
	sst) echo $((4444 + 100 * i)) ;;
	esac
}
loopback_scheme() { [[ $1 == gw-loopback || $1 == haproxy ]]; }

# node_cnf CONFIG N: node N's configuration, as a plain install writes it.
node_cnf() {
	local cfg=$1 n=$2 d="$WORK/data/$2" opts="gcache.size=64M"
	[[ $cfg == galera-ssl ]] && opts="$opts;socket.ssl=yes;socket.ssl_ca=$PKI/ca.pem;socket.ssl_cert=$PKI/$n.pem;socket.ssl_key=$PKI/$n-key.pem"
	local cluster="$NET.1,$NET.2,$NET.3" node sst=""
	node=$(addr "$n")
	if loopback_scheme "$cfg"; then
		cluster="127.0.0.1:$(port g1 gcomm),127.0.0.1:$(port g2 gcomm),127.0.0.1:$(port g3 gcomm)"
		node="127.0.0.1:$(port "$n" gcomm)"
		opts="$opts;gmcast.listen_addr=tcp://$node;ist.recv_addr=127.0.0.1:$(port "$n" ist)"
		sst="wsrep_sst_receive_address = 127.0.0.1:$(port "$n" sst)"
	fi
	cat <<CNF
[mysqld]
user = mysql
datadir = $d/data
socket = $d/mysqld.sock
pid-file = $d/mysqld.pid
log-error = $d/error.log
port = 3306
bind-address = $(addr "$n")
skip-name-resolve
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
innodb_flush_log_at_trx_commit = 0
innodb_buffer_pool_size = 128M
wsrep_on = ON
wsrep_provider = /usr/lib/galera/libgalera_smm.so
wsrep_cluster_name = gw-bench
wsrep_cluster_address = gcomm://$cluster
wsrep_node_address = $node
wsrep_node_name = $n
wsrep_sst_method = rsync
$sst
wsrep_provider_options = "$opts"
CNF
}

gw_file() {
	echo "group: bench-galera"
	[[ $1 == gw-dropin ]] && echo "capture: transparent"
	gw_tls
	printf 'channels: {gcomm: {}, ist: {}, sst: {}}\nmembers:\n'
	local m
	for m in "${MEMBERS[@]}"; do
		if [[ $1 == gw-loopback ]]; then
			echo "  $m: {address: \"$(addr "$m"):24900\", identity: $m, local_ip: 127.0.0.1, ports: {gcomm: $(port "$m" gcomm), ist: $(port "$m" ist), sst: $(port "$m" sst)}}"
		else
			echo "  $m: {address: \"$(addr "$m"):24900\", identity: $m, ports: {gcomm: 4567, ist: 4568, sst: 4444}}"
		fi
	done
}

# haproxy_conf M: node M's haproxy: per peer and channel a frontend on the
# peer's 127.0.0.1 port that tunnels over mTLS to the peer's haproxy, which
# listens at the port plus 20000 and hands the bytes to its node.
haproxy_conf() {
	local m=$1 p c
	haproxy_head
	for c in gcomm ist sst; do
		for p in "${MEMBERS[@]}"; do
			[[ $p == "$m" ]] && continue
			haproxy_out "$m" "to-$p-$c" "$(port "$p" "$c")" "$p" "$(addr "$p"):$(($(port "$p" "$c") + 20000))"
		done
		haproxy_in "$m" "from-peers-$c" "$(addr "$m"):$(($(port "$m" "$c") + 20000))" "$(port "$m" "$c")"
	done
}

sql() { local n=$1; shift; mariadb --socket="$WORK/data/$n/mysqld.sock" -uroot -N -B -e "$*"; }

# wait_status N VAR WANT: until node N's status variable reads WANT (2 min).
wait_status() {
	for _ in $(seq 1200); do
		[[ $(sql "$1" "SHOW STATUS LIKE '$2'" 2>/dev/null | cut -f2) == "$3" ]] && return 0
		sleep 0.1
	done
	log "$1: $2 never became $3"
	tail -n 30 "$WORK/data/$1/error.log" >&2
	exit 1
}

# start_config CONFIG: the topology, the sidecars, and a synced cluster.
start_config() {
	local cfg=$1 n
	new_topology
	local gwenv=() # gw-*-pN: the same, with the sidecars at GOMAXPROCS=N
	[[ $cfg =~ -p([0-9]+)$ ]] && gwenv=(env "GOMAXPROCS=${BASH_REMATCH[1]}") cfg=${cfg%-p*}
	case $cfg in
	gw-dropin | gw-loopback)
		gw_file "$cfg" >"$WORK/gw.yaml"
		for n in "${MEMBERS[@]}"; do
			start "gw-$n" ip netns exec "$NS-$n" "${gwenv[@]}" "$GW" run --config "$WORK/gw.yaml" --member "$n" --log-level warn --log-format json
		done
		for n in "${MEMBERS[@]}"; do # the capture listener, or the outbound listener of a peer
			if [[ $cfg == gw-dropin ]]; then wait_listen "$n" 24901; else wait_listen "$n" "$(port "$([[ $n == g1 ]] && echo g2 || echo g1)" gcomm)"; fi
		done
		;;
	haproxy)
		for n in "${MEMBERS[@]}"; do
			haproxy_conf "$n" >"$WORK/haproxy-$n.cfg"
			start "haproxy-$n" ip netns exec "$NS-$n" haproxy -db -f "$WORK/haproxy-$n.cfg"
		done
		for n in "${MEMBERS[@]}"; do wait_listen "$n" $(($(port "$n" gcomm) + 20000)); done
		;;
	esac
	for n in "${MEMBERS[@]}"; do
		rm -rf "$WORK/data/$n"
		mkdir -p "$WORK/data/$n"
		node_cnf "$cfg" "$n" >"$WORK/data/$n/my.cnf"
		chown -R mysql:mysql "$WORK/data/$n"
		mariadb-install-db --defaults-file="$WORK/data/$n/my.cnf" --user=mysql --skip-test-db \
			--auth-root-authentication-method=socket >"$WORK/install-$n.log" 2>&1
	done
	start "mariadbd-g1" ip netns exec "$NS-g1" mariadbd --defaults-file="$WORK/data/g1/my.cnf" --wsrep-new-cluster
	wait_status g1 wsrep_ready ON
	for n in g2 g3; do
		start "mariadbd-$n" ip netns exec "$NS-$n" mariadbd --defaults-file="$WORK/data/$n/my.cnf"
		wait_status "$n" wsrep_local_state_comment Synced
	done
	wait_status g1 wsrep_cluster_size 3
}

# sysbench_run CONFIG ROUND: prepare, run, and print one JSON result.
sysbench_run() {
	local sb=(sysbench oltp_write_only --mysql-socket="$WORK/data/g1/mysqld.sock" --mysql-user=root
		--tables=4 --table-size=10000 --threads="$THREADS")
	sql g1 "CREATE DATABASE sbtest"
	"${sb[@]}" prepare >"$WORK/prepare.log" 2>&1
	local perf=""
	if [[ ${PERF:-} == 1 && $1 == gw-* && $2 == 1 ]]; then
		perf record -q -F 999 -g -p "$(pid_of gw-g1)" -o "$WORK/perf-$1.data" -- sleep $((DURATION - 2)) 2>/dev/null &
		perf=$!
	fi
	sysbench_measure "$1" "$2" galera-oltp "${sb[@]}" || return 1
	[[ -n $perf ]] && wait "$perf" && perf_top "$1"
	((RATE == 0)) || sysbench_measure "$1" "$2" galera-oltp-paced "${sb[@]}" --rate="$RATE"
}

# sysbench_measure CONFIG ROUND TEST SYSBENCH...: one sysbench run, printed
# as one JSON result with the host's and the tunnels' CPU per transaction.
sysbench_measure() {
	local cfg=$1 round=$2 test=$3 log=$WORK/run-$1-$2-$3.log pids
	shift 3
	read -r -a pids <<<"$(tunnel_pids "$cfg" | tr , ' ')"
	local before after
	before=$(cpu_seconds "${pids[@]}")
	"$@" --time="$DURATION" --report-interval=0 run >"$log" 2>&1
	after=$(cpu_seconds "${pids[@]}")
	local tps p95
	tps=$(sed -n 's/.*transactions: *[0-9]* *(\([0-9.]*\) per sec.).*/\1/p' "$log")
	p95=$(sed -n 's/.*95th percentile: *\([0-9.]*\).*/\1/p' "$log")
	[[ -n $tps && -n $p95 ]] || { log "sysbench via $cfg: no result"; cat "$log" >&2; return 1; }
	# per transaction: CPU seconds × 1e6 ÷ (tps × DURATION)
	awk -v b="$before" -v a="$after" -v tps="$tps" -v d="$DURATION" -v n="$(nproc)" -v tun="${#pids[@]}" \
		-v head="{\"pair\":\"$cfg\",\"round\":$round,\"test\":\"$test\",\"metrics\":{\"tps\":$tps,\"p95_ms\":$p95" 'BEGIN {
		split(b, x, " "); split(a, y, " "); tx = tps * d
		printf "%s,\"host_cpu_us_per_tx\":%.1f,\"host_busy\":%.3f", head, (y[1] - x[1]) * 1e6 / tx, (y[1] - x[1]) / (d * n)
		if (tun > 0) printf ",\"tunnel_cpu_us_per_tx\":%.1f", (y[2] - x[2]) * 1e6 / tx
		print "}}"
	}'
}

# perf_top CONFIG: g1's sidecar's samples under the load, by the system
# call they were in (or user space), and the symbols with the most samples.
perf_top() {
	local data="$WORK/perf-$1.data" out="$ROOT/bench/PROFILE-galera-$1.txt"
	{
		echo "# perf record -F 999 -g of g1's sidecar ($1) under sysbench oltp_write_only, $THREADS threads, $((DURATION - 2)) s; groupwire $REV"
		echo "# samples by the system call on the stack (user: none; its innermost Go function)"
		perf script -i "$data" -F ip,sym 2>/dev/null | awk '
			NF == 0 { if (n) { k = sys ? sys : "user " go; c[k]++; total++ } n = 0; sys = ""; go = ""; next }
			{ n++ }
			!sys && $2 ~ /^__x64_sys_/ { sys = "syscall " substr($2, 11) }
			!sys && $2 ~ /^(ksys_|__sys_|do_sys_)/ { sys = "syscall " $2 }
			!sys && $2 == "do_syscall_64" { sys = "syscall (other)" }
			!go && $2 ~ /^(runtime\.|internal\/|crypto\/|github\.com|main\.|syscall\.|net\.)/ { go = $2 }
			END { for (k in c) printf "%6.2f%%  %s\n", 100 * c[k] / total, k }' | sort -rn | head -n 25
		echo "# symbols (self)"
		perf report -i "$data" --stdio --no-children --sort dso,symbol -g none --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 40
	} >"$out"
	cp "$data" "/tmp/perf-galera-$1.data" # for perf report by hand
	log "wrote $out"
}

RESULTS=$WORK/results.jsonl
log "$ROUNDS round(s) of ${DURATION}s, $THREADS threads; configurations: $CONFIGS"
alternate "$CONFIGS" sysbench_run

{
	echo "- $ROUNDS round(s) of sysbench oltp_write_only, ${DURATION}s, $THREADS threads on g1 (4 tables of 10,000 rows), data on tmpfs; then the same paced at $RATE transactions/s (sysbench --rate; rows marked paced)"
	echo "- three nodes in network namespaces on a bridge (veth, MTU 1500), rsync SST"
	echo "- MariaDB: $(mariadbd --version 2>/dev/null | head -1); sysbench: $(sysbench --version)"
	echo "- groupwire: ${GW_BIN:-$REV}, drop-in and loopback mode, VERIFY_IDENTITY with a CRL, at warn; galera-ssl: socket.ssl with the same CA and certificates"
	echo "- haproxy: $(haproxy -v 2>&1 | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p'), a mesh of mTLS tunnels (TLS 1.3, the same CA, certificates and CRL) in the loopback scheme"
} >"$WORK/notes.md"
report "$CONFIGS" "groupwire group-workload benchmark: MariaDB Galera" bench/galera.sh \
	"${RATIOS:-gw-dropin/galera-ssl,gw-loopback/galera-ssl,haproxy/galera-ssl,galera-ssl/plain,gw-dropin/haproxy,gw-loopback/haproxy}"
