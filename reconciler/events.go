package reconciler

import (
	"log/slog"

	"github.com/keelson/keelson/store"
	"github.com/keelson/keelson/store/record"
)

// Recorder writes the controllers' Events; see package record.
type Recorder = record.Recorder

// NewRecorder returns a recorder whose events name component as their source.
func NewRecorder(st *store.Store, component string, log *slog.Logger) *Recorder {
	return record.New(st, component, log)
}
