#!/bin/sh
# Print the Secret groupwire-certs (YAML) from a folder made by
# `groupwire certs init`: ca.pem, crl.pem and every member's NAME.pem and
# NAME-key.pem. The CA's key (ca-key.pem) and state.json stay behind: they
# are what `groupwire certs issue|revoke` needs, not what the pods need.
#
#   groupwire certs init --dir certs --members mysql-0,mysql-1,mysql-2
#   deploy/kubernetes/make-secret.sh certs | kubectl apply -f -
#
# After `groupwire certs revoke --dir certs mysql-2`, run it again and
# apply: kubelet swaps the mounted files and every sidecar reloads the CRL.
set -eu

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 CERTS_DIR" >&2
	exit 2
fi
dir=$1
name=${SECRET_NAME:-groupwire-certs}

for f in ca.pem crl.pem; do
	if [ ! -f "$dir/$f" ]; then
		echo "$0: $dir/$f is missing (made by groupwire certs init)" >&2
		exit 1
	fi
done

echo "apiVersion: v1"
echo "kind: Secret"
echo "metadata:"
echo "  name: $name"
echo "  labels: {app.kubernetes.io/name: mysql, app.kubernetes.io/component: groupwire}"
echo "type: Opaque"
echo "data:"
for path in "$dir"/*.pem; do
	f=$(basename "$path")
	case $f in
	ca-key.pem) continue ;;
	esac
	printf '  %s: %s\n' "$f" "$(base64 <"$path" | tr -d '\n')"
done
