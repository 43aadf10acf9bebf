// Package cluster owns the cluster file: strict YAML decoding with key
// paths, line numbers and "did you mean"; ${VAR} expansion; go-sockaddr
// address templates; validation that names every problem where it is;
// and the Plan, the fully resolved view of one member, with every default
// filled in once (timeouts, TLS parameters, ACME names). It also checks a
// plan's key material in ssl_mode terms and prints plans, which is what
// `groupwire check` shows. It opens no socket and runs nothing: package
// proxy runs a Plan.
package cluster
