# bench/lib.sh: helpers shared by bench/run.sh and bench/dropin.sh (sourced).
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
