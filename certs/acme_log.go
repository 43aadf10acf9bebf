package certs

import (
	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a zap logger (certmagic logs through zap) that
// writes into log, each line marked component=certmagic with certmagic's
// logger name and fields. certmagic's info lines ("acquiring lock",
// "trying to solve challenge") are written at debug level: the ACME
// manager logs what an operator needs (obtained, failed, in use) itself.
func newZapLogger(log zerolog.Logger) *zap.Logger {
	return zap.New(&zerologCore{log: log.With().Str("component", "certmagic").Logger()})
}

// zerologCore is a zapcore.Core over a zerolog.Logger.
type zerologCore struct {
	log    zerolog.Logger
	fields []zapcore.Field // from With
}

// Enabled reports whether the zerolog logger writes lvl.
func (c *zerologCore) Enabled(lvl zapcore.Level) bool {
	l := zerologLevel(lvl)
	return l >= c.log.GetLevel() && l >= zerolog.GlobalLevel()
}

// With returns a core that adds fields to every entry.
func (c *zerologCore) With(fields []zapcore.Field) zapcore.Core {
	all := make([]zapcore.Field, 0, len(c.fields)+len(fields))
	all = append(append(all, c.fields...), fields...)
	return &zerologCore{log: c.log, fields: all}
}

// Check adds c to ce when the entry's level is enabled.
func (c *zerologCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write writes one entry with its fields.
func (c *zerologCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	ev := c.log.WithLevel(zerologLevel(e.Level))
	if e.LoggerName != "" {
		ev = ev.Str("logger", e.LoggerName)
	}
	ev.Fields(enc.Fields).Msg(e.Message)
	return nil
}

// Sync does nothing: zerolog writes each line at once.
func (c *zerologCore) Sync() error { return nil }

func zerologLevel(l zapcore.Level) zerolog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return zerolog.TraceLevel
	case l == zapcore.InfoLevel:
		return zerolog.DebugLevel
	case l == zapcore.WarnLevel:
		return zerolog.WarnLevel
	default: // error, dpanic, panic, fatal: certmagic never means to exit
		return zerolog.ErrorLevel
	}
}
