# make test: the README's test command. make fuzz: every native fuzz target
# for FUZZTIME each (default 1m; CI runs 10s). A crasher is written to the
# package's testdata/fuzz and stays there as a regression seed.
FUZZTIME ?= 1m

# package:target, one line per parser a file or a peer can reach.
FUZZ_TARGETS := \
	./proxy/cluster:FuzzParseConfig \
	./proxy/cluster:FuzzListenAddr \
	./transport/tlsopt:FuzzResolveCipherList \
	./transport/tlsopt:FuzzParseTLS13Ciphersuites \
	./transport/tlsopt:FuzzParseTLSVersion \
	./transport/tlsopt:FuzzParseKeyExchange \
	./certs:FuzzParseCertsPEM \
	./certs:FuzzParsePrivateKeyPEM \
	./certs:FuzzIndexCRL \
	./transport:FuzzReadFrame \
	./transport:FuzzParseHello \
	./transport:FuzzNameMatches

.PHONY: test fuzz
test:
	go test -race ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== fuzz $$name ($$pkg, $(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done
