#!/usr/bin/env bash
# End-to-end test of the docker-compose group (deploy/compose).
#
# Builds the binary and the scratch image, makes the certificates in the
# compose volume, starts three members with their sidecars, and waits until
# every member has pinged both peers through the sidecars. Then it revokes
# mysql-3's certificate and checks that every link to and from mysql-3 is
# cut (live ones included) while mysql-1 and mysql-2 keep talking without a
# single failed ping. Everything it made (containers, the network compose
# creates, the volume, the image) is removed on exit, pass or fail.
#
# Prints one last line: PASS, FAIL: <why>, or SKIP: <why> (exit 0) when
# docker is not available; with GROUPWIRE_COMPOSE=1 (as .ci/run sets it) a
# missing docker is a FAIL (exit 1) instead. Takes about a minute.
set -euo pipefail

skip() {
	if [ "${GROUPWIRE_COMPOSE:-}" = 1 ]; then
		echo "FAIL: GROUPWIRE_COMPOSE=1, but $1"
		exit 1
	fi
	echo "SKIP: $1"
	exit 0
}

command -v docker >/dev/null 2>&1 || skip "docker is not installed"
docker info >/dev/null 2>&1 || skip "the docker daemon is not reachable (docker info failed)"
if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
	compose=(docker-compose)
else
	skip "neither 'docker compose' nor 'docker-compose' is installed"
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
project="gwtest$$"
image="groupwire:test-$$"
export GROUPWIRE_IMAGE="$image"
members=(mysql-1 mysql-2 mysql-3)
failure=""
started=$SECONDS

dc() { "${compose[@]}" -p "$project" -f "$here/docker-compose.yml" "$@"; }
log() { printf '[%3ds] %s\n' $((SECONDS - started)) "$*"; }
fail() {
	failure="$*"
	exit 1
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ $rc -ne 0 && -z $failure ]]; then
		failure="a command failed (exit $rc); see above"
	fi
	if [[ -n $failure ]]; then
		echo "---- last log lines of every service ----"
		dc logs --no-color --tail=15 2>&1 | grep -v '^Attaching' || true
	fi
	log "cleaning up: down -v, removing $image"
	dc down -v --remove-orphans >/dev/null 2>&1 || true
	docker image rm -f "$image" >/dev/null 2>&1 || true
	if [[ -n $failure ]]; then
		echo "FAIL: $failure"
		exit 1
	fi
	echo "PASS: compose group pinged through sidecars, revoked member cut off, other pair unharmed ($((SECONDS - started))s)"
}
trap cleanup EXIT
trap 'failure="interrupted"; exit 1' INT TERM

# cid SERVICE: its container ID (looked up once: compose is slow to ask)
declare -A ids
cid() {
	if [[ -z ${ids[$1]:-} ]]; then
		ids[$1]=$(dc ps -q "$1")
		[[ -n ${ids[$1]} ]] || fail "no container for service $1"
	fi
	echo "${ids[$1]}"
}

# svc MEMBER: the service that runs member mysql-N (member-N); mysql-N
# itself only holds the namespace.
svc() { echo "member-${1#mysql-}"; }

# member_log MEMBER FROM_LINE: the member's ping lines after line FROM_LINE
member_log() { docker logs "$(cid "$(svc "$1")")" 2>&1 | tail -n +$(($2 + 1)); }

# mark MEMBER: the member's log length now
mark() { docker logs "$(cid "$(svc "$1")")" 2>&1 | wc -l; }

# count MEMBER FROM_LINE PEER RESULT: pings from MEMBER to PEER with RESULT after FROM_LINE
count() {
	member_log "$1" "$2" | grep -c "^ping from=$1 to=$3 .*result=$4 " || true
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds
wait_for() {
	local limit=$1 what=$2
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@"; do
		if ((SECONDS >= deadline)); then
			fail "timed out after ${limit}s waiting for $what"
		fi
		sleep 0.5
	done
}

log "building the binary and $image"
"$root/deploy/build-image.sh" "$image" 2>&1 | grep -v -i -e deprecated -e buildx -e 'docs.docker.com' -e '^ *$' || true
docker image inspect "$image" >/dev/null 2>&1 || fail "image $image was not built"

log "making certificates in the ${project}_certs volume"
dc run --rm certs >/dev/null 2>&1 || fail "certs init in the compose volume failed"

log "starting the group"
dc up -d >/dev/null 2>&1 || fail "docker compose up failed"
for s in member-1 member-2 member-3 sidecar-1 sidecar-2 sidecar-3; do cid "$s" >/dev/null; done

all_pairs_ok() {
	local m p
	for m in "${members[@]}"; do
		for p in "${members[@]}"; do
			[[ $m == "$p" ]] && continue
			[[ $(count "$m" 0 "$p" ok) -gt 0 ]] || return 1
		done
	done
}
wait_for 60 "every member to ping both peers through the sidecars" all_pairs_ok
log "every member pings both peers through the sidecars"

declare -A before
for m in "${members[@]}"; do before[$m]=$(mark "$m"); done

log "revoking mysql-3's certificate"
dc run --rm certs certs revoke --dir /certs mysql-3 >/dev/null 2>&1 || fail "certs revoke mysql-3 failed"

mysql3_cut() {
	[[ $(count mysql-1 "${before[mysql-1]}" mysql-3 fail) -gt 0 ]] &&
		[[ $(count mysql-2 "${before[mysql-2]}" mysql-3 fail) -gt 0 ]] &&
		[[ $(count mysql-3 "${before[mysql-3]}" mysql-1 fail) -gt 0 ]] &&
		[[ $(count mysql-3 "${before[mysql-3]}" mysql-2 fail) -gt 0 ]]
}
wait_for 30 "pings to and from mysql-3 to fail after the revocation" mysql3_cut
log "pings to and from mysql-3 fail"

# The live links to mysql-3 were cut by the CRL reload, not only refused
# at the next handshake.
for s in sidecar-1 sidecar-2; do
	if ! docker logs "$(cid $s)" 2>&1 | grep 'no longer trusted' | grep -q '"peer":"mysql-3"'; then
		fail "$s did not cut its live link to mysql-3 after the CRL changed"
	fi
done
log "sidecar-1 and sidecar-2 cut their live links to mysql-3"

declare -A steady
for m in "${members[@]}"; do steady[$m]=$(mark "$m"); done
sleep 4

# check_pair FROM TO ok|cut: since the steady mark, FROM's pings to TO
# all succeeded (at least two), or all failed (at least two).
check_pair() {
	local from=$1 to=$2 want=$3 ok fails
	ok=$(count "$from" "${steady[$from]}" "$to" ok)
	fails=$(count "$from" "${steady[$from]}" "$to" fail)
	case $want in
	ok) ((ok >= 2 && fails == 0)) || fail "$from -> $to after revocation: want only ok pings, got $ok ok and $fails failed" ;;
	cut) ((ok == 0 && fails >= 2)) || fail "$from -> $to after revocation: want only failed pings, got $ok ok and $fails failed" ;;
	esac
}
check_pair mysql-1 mysql-2 ok
check_pair mysql-2 mysql-1 ok
check_pair mysql-1 mysql-3 cut
check_pair mysql-2 mysql-3 cut
check_pair mysql-3 mysql-1 cut
check_pair mysql-3 mysql-2 cut

# mysql-1 and mysql-2 never missed a ping, across the revocation too.
for pair in "mysql-1 mysql-2" "mysql-2 mysql-1"; do
	read -r from to <<<"$pair"
	n=$(count "$from" "${before[$from]}" "$to" fail)
	((n == 0)) || fail "$from -> $to: $n ping(s) failed across the revocation"
done
log "mysql-1 <-> mysql-2 kept working; mysql-3 stays cut off"
