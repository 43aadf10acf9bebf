# groupwire: a scratch image around a static binary.
#
# No base image is pulled: build the binary first, then the image
# (deploy/build-image.sh does both):
#
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(git describe --always --dirty)" -o deploy/.build/groupwire .
#   docker build -t groupwire:dev .
#
# Run it with a cluster file and the member's name:
#
#   docker run -v $PWD/cluster.yaml:/etc/groupwire/cluster.yaml:ro -v certs:/certs:ro \
#     -e GROUPWIRE_MEMBER=mysql-1 groupwire:dev
FROM scratch

# /certs, owned by the runtime user, so that a new named volume mounted
# there is writable by `groupwire certs init` running as that user.
COPY --chown=65532:65532 deploy/image/rootfs/ /
COPY deploy/.build/groupwire /groupwire

ENV GROUPWIRE_CONFIG=/etc/groupwire/cluster.yaml \
    GROUPWIRE_LOG_FORMAT=json

# The default inbound link port of the examples; the cluster file decides.
EXPOSE 24900

USER 65532:65532
ENTRYPOINT ["/groupwire"]
CMD ["run"]
