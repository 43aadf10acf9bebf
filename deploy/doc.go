// Package deploy holds groupwire's deployment assets, not library code:
// the docker-compose group (compose/), Kubernetes manifests (kubernetes/),
// the systemd unit (systemd/) and the image build script. Its tests check
// that every asset parses, that each example cluster file is valid for
// every member and works with certificates made by `groupwire certs init`,
// and that the assets agree with their cluster files.
package deploy
