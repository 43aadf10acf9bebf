# bench/lib.sh: helpers shared by the bench scripts (sourced).
# The caller sets WORK (a scratch directory removed on exit) and may define
# cleanup_extra, run on exit after every started process is stopped.

STARTED=()

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

cleanup() {
	local pid
	for pid in "${STARTED[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || true
	done
	for pid in "${STARTED[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	if declare -F cleanup_extra >/dev/null; then cleanup_extra; fi
	rm -rf "$WORK"
}

# start NAME CMD...: run CMD in its own session (so its pid is the session
# id gwload measures, forks included), logging to $WORK/NAME.log.
start() {
	local name=$1
	shift
	setsid "$@" >"$WORK/$name.log" 2>&1 &
	STARTED+=("$!")
	eval "PID_${name//[-+]/_}=$!"
}

pid_of() { local v="PID_${1//[-+]/_}"; echo "${!v}"; }

# tunnel_pids CONFIG: the pids of CONFIG's tunnel processes (gw-M or
# haproxy-M for each of MEMBERS), comma-separated; empty for the others.
# start runs each with setsid, so each pid is also its session id, which
# gwetcd -tunnels and gwload cpu take.
tunnel_pids() {
	local m pids=()
	for m in "${MEMBERS[@]}"; do
		case $1 in
		gw-*) pids+=("$(pid_of "gw-$m")") ;;
		haproxy) pids+=("$(pid_of "haproxy-$m")") ;;
		esac
	done
	(IFS=,; echo "${pids[*]}")
}

# cpu_seconds [SESSION...]: "HOST TUNNELS": the host's busy CPU seconds
# (every CPU) and those of the given process sessions (gwload cpu).
cpu_seconds() { "$WORK/gwload" cpu "$@"; }

need() { # need CMD PACKAGE
	command -v "$1" >/dev/null && return 0
	log "installing $2 (apt-get)"
	local sudo=""
	((EUID == 0)) || sudo=sudo
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}

# build_tools ROOT: build gwload and groupwire from the committed tree
# (HEAD), so a half-edited working tree cannot break or skew the run and the
# report names what was measured; GW_TREE=work builds the working tree, and
# GW_BIN names a prebuilt groupwire. Sets SRC, REV and GW.
build_tools() {
	local root=$1
	log "building into $WORK"
	SRC=$WORK/src
	mkdir -p "$SRC"
	if [[ "${GW_TREE:-head}" == work ]]; then
		SRC=$root
		REV="$(cd "$root" && git rev-parse --short HEAD) + working tree"
	else
		(cd "$root" && git archive HEAD) | tar -x -C "$SRC"
		REV=$(cd "$root" && git rev-parse --short HEAD)
	fi
	(cd "$SRC" && go build -o "$WORK/gwload" ./bench/cmd/gwload)
	GW=${GW_BIN:-$WORK/groupwire}
	[[ -n "${GW_BIN:-}" ]] || (cd "$SRC" && go build -o "$GW" .)
}

# The group benchmarks' topology: a bridge in namespace $NS-sw and one
# namespace per member of MEMBERS ($NS-NAME) on it, at $NET.N, N being the
# digits of the member's name. The caller sets NS, NET and MEMBERS.
addr() { echo "$NET.${1//[!0-9]/}"; } # addr e2 → $NET.2

new_topology() {
	del_topology
	ip netns add "$NS-sw"
	ip -n "$NS-sw" link add br0 type bridge
	ip -n "$NS-sw" link set br0 up
	local m
	for m in "${MEMBERS[@]}"; do
		ip netns add "$NS-$m"
		ip link add "v-$m" netns "$NS-$m" type veth peer name "b-$m" netns "$NS-sw"
		ip -n "$NS-sw" link set "b-$m" master br0 up
		ip -n "$NS-$m" addr add "$(addr "$m")/24" dev "v-$m"
		ip -n "$NS-$m" link set "v-$m" up
		ip -n "$NS-$m" link set lo up
	done
}

del_topology() {
	local m
	ip netns del "$NS-sw" 2>/dev/null || true
	for m in "${MEMBERS[@]}"; do ip netns del "$NS-$m" 2>/dev/null || true; done
}

# group_bench_setup SCRIPT: what the group benchmarks (group.sh, galera.sh)
# need before anything starts: root, and on exit the topology taken down
# and the tmpfs at $WORK/data unmounted, after the processes are stopped.
group_bench_setup() {
	((EUID == 0)) || { log "$1 makes network namespaces: run it as root"; exit 1; }
	cleanup_extra() {
		del_topology
		umount "$WORK/data" 2>/dev/null || true
	}
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

# gw_tls [LINE...]: groupwire's tls block for the benchmarks,
# VERIFY_IDENTITY with the CA, each member's certificate and key and the
# CRL of $PKI, then any extra lines (already indented).
gw_tls() {
	cat <<YAML
tls:
  ssl_mode: VERIFY_IDENTITY
  ssl_ca: $PKI/ca.pem
  ssl_cert: $PKI/\${GROUPWIRE_MEMBER}.pem
  ssl_key: $PKI/\${GROUPWIRE_MEMBER}-key.pem
  ssl_crl: $PKI/crl.pem
YAML
	local line
	for line in "$@"; do echo "$line"; done
}

# haproxy_pems: each member's certificate and key in one file, as haproxy
# takes them ($PKI/NAME-haproxy.pem).
haproxy_pems() {
	local m
	for m in "${MEMBERS[@]}"; do cat "$PKI/$m.pem" "$PKI/$m-key.pem" >"$PKI/$m-haproxy.pem"; done
}

# haproxy_head: the global and defaults sections of a tunnel's haproxy
# (TCP, TLS 1.3 only).
haproxy_head() {
	printf 'global\n\tmaxconn 4000\n\tssl-default-bind-options ssl-min-ver TLSv1.3\n\tssl-default-server-options ssl-min-ver TLSv1.3\n'
	printf 'defaults\n\tmode tcp\n\ttimeout connect 5s\n\ttimeout client 1h\n\ttimeout server 1h\n'
}

# haproxy_out ME NAME PORT PEER ADDR: a frontend on 127.0.0.1:PORT that
# tunnels to PEER's haproxy at ADDR over mTLS, as member ME, checking that
# the peer's certificate names PEER.
haproxy_out() {
	printf 'frontend %s\n\tbind 127.0.0.1:%s\n\tdefault_backend %s\nbackend %s\n' "$2" "$3" "$2" "$2"
	printf '\tserver %s %s ssl crt %s ca-file %s crl-file %s verify required verifyhost %s sni str(%s)\n' \
		"$4" "$5" "$PKI/$1-haproxy.pem" "$PKI/ca.pem" "$PKI/crl.pem" "$4" "$4"
}

# haproxy_in ME NAME ADDR PORT: a frontend at ADDR taking the peers' mTLS
# tunnels, as member ME, and handing the bytes to 127.0.0.1:PORT.
haproxy_in() {
	printf 'frontend %s\n\tbind %s ssl crt %s ca-file %s crl-file %s verify required\n\tdefault_backend %s-local\n' \
		"$2" "$3" "$PKI/$1-haproxy.pem" "$PKI/ca.pem" "$PKI/crl.pem" "$2"
	printf 'backend %s-local\n\tserver member 127.0.0.1:%s\n' "$2" "$4"
}

# stop_all stops every process started so far, and forgets them.
stop_all() {
	local pid
	for pid in "${STARTED[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
	for pid in "${STARTED[@]}"; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	STARTED=()
}

# wait_listen M PORT: until something listens on PORT in M's namespace.
wait_listen() {
	for _ in $(seq 100); do
		ip netns exec "$NS-$1" ss -Hltn "sport = :$2" | grep -q . && return 0
		sleep 0.1
	done
	log "nothing listens on port $2 in $NS-$1"
	tail -n 20 "$WORK"/*.log >&2
	exit 1
}

# alternate CONFIGS MEASURE: ROUNDS rounds; in each, every configuration
# is started (start_config), measured (MEASURE CONFIG ROUND, its JSON line
# appended to $RESULTS) and stopped; the order rotates between rounds.
alternate() {
	local measure=$2 round cfg order
	read -r -a order <<<"$1"
	for round in $(seq "$ROUNDS"); do
		for cfg in "${order[@]}"; do
			log "round $round: $cfg"
			start_config "$cfg"
			"$measure" "$cfg" "$round" >>"$RESULTS" || log "FAILED: $cfg (logs in $WORK)"
			stop_all
		done
		order=("${order[@]:1}" "${order[0]}")
	done
}

# report PAIRS TITLE SCRIPT RATIOS: the Markdown report of $RESULTS in
# $OUT, with $WORK/notes.md under the machine and the PAIR/REF ratio
# tables; the raw results go beside it (.jsonl).
report() {
	"$WORK/gwload" report -in "$RESULTS" -out "$OUT" -pairs "${1// /,}" -notes "$WORK/notes.md" \
		-title "$2" -script "$3" -peers "" -ratios "$4"
	cp "$RESULTS" "${OUT%.md}.jsonl"
	log "wrote $OUT"
}
