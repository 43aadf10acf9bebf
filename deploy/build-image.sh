#!/bin/sh
# Build the static groupwire binary and the scratch image around it.
#
#   deploy/build-image.sh [IMAGE]       (default IMAGE: groupwire:dev)
#
# VERSION (default: git describe) is stamped into the binary; GOARCH picks
# the image's architecture (default: this machine's).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
image=${1:-groupwire:dev}
version=${VERSION:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo dev)}

cd "$root"
mkdir -p deploy/.build
CGO_ENABLED=0 GOOS=linux go build -trimpath \
	-ldflags "-s -w -X main.version=$version" \
	-o deploy/.build/groupwire .
docker build --quiet -t "$image" . >/dev/null
echo "built $image (groupwire $version)"
