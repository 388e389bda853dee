package gateway

import "github.com/wsgate/wsgate/internal/logs"

// The levels below info that gateway logs at, which slog.Logger has no
// methods for. They are internal/logs' levels; the caller's logger names them.
const (
	LevelDebug  = logs.LevelDebug
	LevelTrace  = logs.LevelTrace
	LevelAccess = logs.LevelAccess
)
