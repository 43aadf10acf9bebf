#!/usr/bin/env bash
# bench/run.sh [--quick]: measure groupwire beside other proxy pairs in ONE
# run, alternating rounds, and write bench/RESULTS.md. See bench/README.md.
#
# Pairs: direct (no proxy), socat (plaintext floor), gw-disabled,
# gw-verify (VERIFY_IDENTITY, TLS 1.3, AES-128-GCM, ECDSA P-256), gw-x25519
# (the same with tls_kex: X25519, the key exchange stunnel uses), stunnel
# (mTLS), haproxy (mode tcp, mTLS), and ghostunnel if
# GHOSTUNNEL=/path/to/ghostunnel is set (bench/README.md says how to build it).
# Everything listens on 127.0.0.x only; every process is stopped on exit.
#
# Environment: ROUNDS, DURATION (e.g. 3s), LINKS (idle links), GW_BIN (a
# prebuilt groupwire binary), OUT (the report, default bench/RESULTS.md),
# TESTS (space-separated subset), PAIRS (space-separated subset), GW_TREE
# (head: build the committed tree, the default; work: the working tree),
# PERF (1: count syscalls per MiB / per message with perf stat), BASE (a
# git revision: adds the pair gw-base, VERIFY_IDENTITY as gw-verify but
# built from that revision, for an A/B of a hot-path change in one run).
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
LINKS=${LINKS:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/bench/RESULTS.md}
TESTS=${TESTS:-"bulk-up-1 bulk-down-1 bulk-up-8 bulk-down-8 pp-1 pp-16 connect idle"}
WORK=$(mktemp -d /tmp/gwbench.XXXXXX)
SVC=7002 # member b's service port: the sink listens there; every pair's entry too
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port HOST PORT: until something listens there (at most 10 s).
wait_port() {
	for _ in $(seq 100); do
		ss -Hltn "src $1:$2" | grep -q . && return 0
		sleep 0.1
	done
	log "nothing listens on $1:$2; logs:"
	tail -n 20 "$WORK"/*.log >&2
	exit 1
}

need socat socat
need stunnel4 stunnel4
need haproxy haproxy
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

build_tools "$ROOT"
"$GW" certs init --dir "$WORK/pki" --members a,b >/dev/null
PKI=$WORK/pki

# --- the server: stands in for member b's service behind every pair -----
start sink "$WORK/gwload" serve -listen "127.0.0.30:$SVC,127.0.0.12:$SVC,127.0.0.14:$SVC,127.0.0.16:$SVC,127.0.0.18:$SVC"
wait_port 127.0.0.30 $SVC

declare -A ENTRY PROCS
ENTRY[direct]=127.0.0.30:$SVC
PROCS[direct]=""

# --- socat: plaintext pair ---------------------------------------------
start socat-a socat -b65536 "TCP-LISTEN:$SVC,bind=127.0.0.21,reuseaddr,fork,nodelay,backlog=4096" "TCP:127.0.0.22:24900,nodelay"
start socat-b socat -b65536 "TCP-LISTEN:24900,bind=127.0.0.22,reuseaddr,fork,nodelay,backlog=4096" "TCP:127.0.0.30:$SVC,nodelay"
ENTRY[socat]=127.0.0.21:$SVC
PROCS[socat]="$(pid_of socat-a),$(pid_of socat-b)"

# --- groupwire: a at .11/.13, b at .12/.14 -------------------------------
gwconfig() { # gwconfig MODE IP_A IP_B [TLS_KEX]
	cat <<YAML
group: bench
tls:
  ssl_mode: $1
YAML
	if [[ $1 != DISABLED ]]; then
		cat <<YAML
  ssl_ca: $PKI/ca.pem
  ssl_cert: $PKI/\${GROUPWIRE_MEMBER}.pem
  ssl_key: $PKI/\${GROUPWIRE_MEMBER}-key.pem
  ssl_crl: $PKI/crl.pem
  tls_version: TLSv1.3
  tls_ciphersuites: TLS_AES_128_GCM_SHA256
YAML
		[[ -z ${4:-} ]] || echo "  tls_kex: $4"
	fi
	cat <<YAML
channels:
  group: {}
members:
  a: {address: "$2:24900", listen: "$2:24900", identity: a, local_ip: $2, ports: {group: 7001}}
  b: {address: "$3:24900", listen: "$3:24900", identity: b, local_ip: $3, ports: {group: $SVC}}
YAML
}
gwconfig DISABLED 127.0.0.11 127.0.0.12 >"$WORK/gw-disabled.yaml"
gwconfig VERIFY_IDENTITY 127.0.0.13 127.0.0.14 >"$WORK/gw-verify.yaml"
# The same with classical X25519 key exchange, as stunnel negotiates: a
# like-for-like comparison of new links (gw-verify keeps Go's hybrid
# post-quantum X25519MLKEM768).
gwconfig VERIFY_IDENTITY 127.0.0.15 127.0.0.16 X25519 >"$WORK/gw-x25519.yaml"
for p in gw-disabled gw-verify gw-x25519; do
	for m in a b; do
		start "$p-$m" "$GW" run --config "$WORK/$p.yaml" --member $m --log-level warn --log-format json
	done
done
ENTRY[gw-disabled]=127.0.0.11:$SVC
PROCS[gw-disabled]="$(pid_of gw-disabled-a),$(pid_of gw-disabled-b)"
ENTRY[gw-verify]=127.0.0.13:$SVC
PROCS[gw-verify]="$(pid_of gw-verify-a),$(pid_of gw-verify-b)"
ENTRY[gw-x25519]=127.0.0.15:$SVC
PROCS[gw-x25519]="$(pid_of gw-x25519-a),$(pid_of gw-x25519-b)"
BASE_PAIR=""
if [[ -n "${BASE:-}" ]]; then
	mkdir -p "$WORK/base"
	(cd "$ROOT" && git archive "$BASE") | tar -x -C "$WORK/base"
	(cd "$WORK/base" && go build -o "$WORK/groupwire-base" .)
	gwconfig VERIFY_IDENTITY 127.0.0.17 127.0.0.18 >"$WORK/gw-base.yaml"
	for m in a b; do
		start "gw-base-$m" "$WORK/groupwire-base" run --config "$WORK/gw-base.yaml" --member $m --log-level warn --log-format json
	done
	ENTRY[gw-base]=127.0.0.17:$SVC
	PROCS[gw-base]="$(pid_of gw-base-a),$(pid_of gw-base-b)"
	BASE_PAIR=" gw-base"
fi

# --- stunnel: mTLS pair, TLS 1.3 AES-128-GCM, verified chain and name ---
stunnelconf() { # stunnelconf SIDE
	cat <<CONF
foreground = yes
pid =
debug = warning
[link]
CAfile = $PKI/ca.pem
CRLfile = $PKI/crl.pem
verifyChain = yes
sslVersionMin = TLSv1.3
ciphersuites = TLS_AES_128_GCM_SHA256
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
CONF
	if [[ $1 == a ]]; then
		printf 'client = yes\naccept = 127.0.0.41:%s\nconnect = 127.0.0.42:24900\ncert = %s\nkey = %s\ncheckHost = b\n' $SVC "$PKI/a.pem" "$PKI/a-key.pem"
	else
		printf 'accept = 127.0.0.42:24900\nconnect = 127.0.0.30:%s\ncert = %s\nkey = %s\ncheckHost = a\n' $SVC "$PKI/b.pem" "$PKI/b-key.pem"
	fi
}
stunnelconf a >"$WORK/stunnel-a.conf"
stunnelconf b >"$WORK/stunnel-b.conf"
start stunnel-a stunnel4 "$WORK/stunnel-a.conf"
start stunnel-b stunnel4 "$WORK/stunnel-b.conf"
ENTRY[stunnel]=127.0.0.41:$SVC
PROCS[stunnel]="$(pid_of stunnel-a),$(pid_of stunnel-b)"

# --- haproxy: mTLS pair in mode tcp, TLS 1.3 AES-128-GCM, CRL, name checked
haproxyconf() { # haproxyconf SIDE
	cat <<CONF
global
	maxconn 8000
	ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256
	ssl-default-server-ciphersuites TLS_AES_128_GCM_SHA256
	ssl-default-bind-options ssl-min-ver TLSv1.3
	ssl-default-server-options ssl-min-ver TLSv1.3
defaults
	mode tcp
	timeout connect 5s
	timeout client 1h
	timeout server 1h
CONF
	if [[ $1 == a ]]; then
		printf 'frontend fa\n\tbind 127.0.0.61:%s\n\tdefault_backend ba\nbackend ba\n' $SVC
		printf '\tserver b 127.0.0.62:24900 ssl crt %s ca-file %s crl-file %s verify required verifyhost b sni str(b)\n' \
			"$PKI/a-haproxy.pem" "$PKI/ca.pem" "$PKI/crl.pem"
	else
		printf 'frontend fb\n\tbind 127.0.0.62:24900 ssl crt %s ca-file %s crl-file %s verify required\n' \
			"$PKI/b-haproxy.pem" "$PKI/ca.pem" "$PKI/crl.pem"
		printf '\ttcp-request session reject unless { ssl_c_s_dn(cn) -m str a }\n\tdefault_backend bb\n'
		printf 'backend bb\n\tserver s 127.0.0.30:%s\n' $SVC
	fi
}
for m in a b; do
	cat "$PKI/$m.pem" "$PKI/$m-key.pem" >"$PKI/$m-haproxy.pem"
	haproxyconf $m >"$WORK/haproxy-$m.cfg"
	start "haproxy-$m" haproxy -db -f "$WORK/haproxy-$m.cfg"
done
ENTRY[haproxy]=127.0.0.61:$SVC
PROCS[haproxy]="$(pid_of haproxy-a),$(pid_of haproxy-b)"

ALL_PAIRS="direct socat gw-disabled gw-verify$BASE_PAIR gw-x25519 stunnel haproxy"

# --- ghostunnel, if given ---------------------------------------------
if [[ -n "${GHOSTUNNEL:-}" ]]; then
	start ghostunnel-b "$GHOSTUNNEL" server --listen 127.0.0.52:24900 --target "127.0.0.30:$SVC" --unsafe-target \
		--cert "$PKI/b.pem" --key "$PKI/b-key.pem" --cacert "$PKI/ca.pem" --allow-cn a --quiet=conns
	start ghostunnel-a "$GHOSTUNNEL" client --listen "127.0.0.51:$SVC" --target 127.0.0.52:24900 --unsafe-listen \
		--cert "$PKI/a.pem" --key "$PKI/a-key.pem" --cacert "$PKI/ca.pem" --override-server-name b --quiet=conns
	ENTRY[ghostunnel]=127.0.0.51:$SVC
	PROCS[ghostunnel]="$(pid_of ghostunnel-a),$(pid_of ghostunnel-b)"
	ALL_PAIRS="$ALL_PAIRS ghostunnel"
fi
PAIRS=${PAIRS:-$ALL_PAIRS}
# PERF=1 counts every pair's syscalls with perf stat (a few % of overhead:
# keep it to profiling runs, apart from the rounds the targets are judged on).
PERF_FLAG=""
if [[ -n "${PERF:-}" ]]; then
	need perf linux-perf
	PERF_FLAG=-perf
fi

for e in "${ENTRY[@]}"; do wait_port "${e%:*}" "${e#*:}"; done
wait_port 127.0.0.12 $SVC
wait_port 127.0.0.14 $SVC
wait_port 127.0.0.16 $SVC
[[ -z "${BASE:-}" ]] || wait_port 127.0.0.18 $SVC

# --- rounds: per test, every pair back to back; the pair order rotates --
RESULTS=$WORK/results.jsonl
read -r -a order <<<"$PAIRS"
log "$ROUNDS round(s) of $DURATION per test; pairs: $PAIRS"
for round in $(seq "$ROUNDS"); do
	for test in $TESTS; do
		for pair in "${order[@]}"; do
			[[ $test == idle && $pair == direct ]] && continue
			log "round $round: $test via $pair"
			if ! "$WORK/gwload" run -pair "$pair" -round "$round" -test "$test" -target "${ENTRY[$pair]}" \
				-duration "$DURATION" -pids "${PROCS[$pair]}" -links "$LINKS" $PERF_FLAG >>"$RESULTS"; then
				log "FAILED: $test via $pair (see the logs in $WORK, kept until exit)"
			fi
			sleep 0.2
		done
	done
	order=("${order[@]:1}" "${order[0]}")
done

{
	echo "- mode: $( ((QUICK)) && echo quick || echo full ), $ROUNDS round(s), $DURATION per timed test, $LINKS idle links"
	echo "- socat: $(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/\1/p' | head -1) (-b65536, fork per link)"
	echo "- stunnel: $(stunnel4 -version 2>&1 | sed -n 's/^stunnel \([^ ]*\).*/\1/p' | head -1), $(stunnel4 -version 2>&1 | grep -o 'OpenSSL [0-9.]*' | head -1)"
	echo "- haproxy: $(haproxy -v 2>&1 | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p'), mode tcp, nbthread = nproc"
	echo "- groupwire: ${GW_BIN:-$REV}"
	[[ -z "${BASE:-}" ]] || echo "- gw-base: groupwire at $(cd "$ROOT" && git rev-parse --short "$BASE"), the A/B baseline"
	if [[ -n "${GHOSTUNNEL:-}" ]]; then echo "- ghostunnel: $("$GHOSTUNNEL" --version 2>&1 | head -1)"; fi
	echo "- logging: groupwire at warn, stunnel at warning, haproxy without a log target, ghostunnel --quiet=conns"
} >"$WORK/notes.md"
"$WORK/gwload" report -in "$RESULTS" -out "$OUT" -pairs "${PAIRS// /,}" -notes "$WORK/notes.md"
cp "$RESULTS" "${OUT%.md}.jsonl"
log "wrote $OUT"
