package proxy

// TLSOptions are the MySQL-style TLS options of the cluster file's `tls`
// block and of `channels.NAME.tls`. An empty string means unset (inherited).
type TLSOptions struct {
	SSLMode         string `yaml:"ssl_mode"`
	SSLCA           string `yaml:"ssl_ca"`
	SSLCAPath       string `yaml:"ssl_capath"`
	SSLCert         string `yaml:"ssl_cert"`
	SSLKey          string `yaml:"ssl_key"`
	SSLCRL          string `yaml:"ssl_crl"`
	SSLCRLPath      string `yaml:"ssl_crlpath"`
	SSLCipher       string `yaml:"ssl_cipher"`
	TLSCiphersuites string `yaml:"tls_ciphersuites"`
	TLSVersion      string `yaml:"tls_version"`
}
