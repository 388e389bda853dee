package gateway

// A ConfigError is a Config field New cannot use, and why.
type ConfigError struct {
	Field string // the field's name: "Dir", "CGIDir", "StaticDir", "Subprotocols" or "Origins"
	Err   error
}

// configFieldWords says what each field a ConfigError can name holds.
var configFieldWords = map[string]string{
	"Dir":          "command directory",
	"CGIDir":       "CGI directory",
	"StaticDir":    "static directory",
	"Origins":      "allowed origins",
	"Subprotocols": "subprotocols",
}

func (e *ConfigError) Error() string { return configFieldWords[e.Field] + ": " + e.Err.Error() }

func (e *ConfigError) Unwrap() error { return e.Err }
