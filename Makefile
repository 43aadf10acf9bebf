# make test: the README's test command. make fuzz: every native fuzz target
# for FUZZTIME each (default 1m; CI gives a count of inputs instead,
# FUZZTIME=100000x). A crasher is written to the package's testdata/fuzz,
# stays there as a regression seed, and fails the run; a target that fails
# without one (the engine's own hang or crash under load) is shown in full
# and run once more.
#
# Why CI counts inputs: with a duration, Go 1.26's fuzzing coordinator can
# report "context deadline exceeded" at the deadline having found nothing
# (golang/go#75804, fixed in Go 1.27). A count sets no deadline. It failed
# FuzzParseConfig twice in a row in CI, on a loaded machine where a worker
# spent seconds minimizing a new input (0 execs/s meanwhile).
#
# FUZZMINIMIZE bounds the minimization of each new input or crasher
# (Go's default is 1m): the cluster file's seeds are whole files, and
# minimizing them stalled a 10 s run for most of its time.
FUZZTIME ?= 1m
FUZZMINIMIZE ?= 10s

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
	./certs:FuzzParseFetchedCRL \
	./transport:FuzzReadFrame \
	./transport:FuzzParseHello \
	./transport:FuzzNameMatches

.PHONY: test fuzz
test:
	go test -race ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; dir=$$pkg/testdata/fuzz/$$name; \
		before=$$(ls $$dir 2>/dev/null | wc -l); \
		echo "== fuzz $$name ($$pkg, $(FUZZTIME))"; \
		if go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg > /tmp/fuzz-$$name.log 2>&1; then \
			tail -n 1 /tmp/fuzz-$$name.log; continue; \
		fi; \
		grep -v '^fuzz: elapsed' /tmp/fuzz-$$name.log | tail -n 30; \
		if [ "$$(ls $$dir 2>/dev/null | wc -l)" != "$$before" ]; then \
			echo "FAIL: $$name found a crasher, kept in $$dir"; exit 1; \
		fi; \
		echo "== $$name failed without a crasher (the fuzzing engine, not an input): once more"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg; \
	done
