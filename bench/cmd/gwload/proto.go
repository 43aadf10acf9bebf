package main

// The first byte a client sends picks what the server does with the
// connection.
const (
	opSink   = 'S' // read and discard until EOF, then answer the count (8 bytes, big endian)
	opSource = 'R' // write bytes until the client closes
	opEcho   = 'E' // write back every byte read, until EOF
)

// msgSize is the request/response size of the small-message tests.
const msgSize = 256

// chunkSize is the write size of the bulk tests.
const chunkSize = 64 << 10
