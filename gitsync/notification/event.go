package notification

import "time"

// Severity of an event: SeverityInfo (an attempt started or succeeded) or
// SeverityError (it failed). A provider's Severity is the least it sends.
type Severity string

// The severities, least first.
const (
	// SeverityInfo marks an attempt that started or succeeded.
	SeverityInfo Severity = "info"
	// SeverityError marks an attempt that failed.
	SeverityError Severity = "error"
)

// State of a sync attempt, as commit statuses carry it.
type State string

// The states of a sync attempt.
const (
	// StatePending: the attempt has started.
	StatePending State = "pending"
	// StateSuccess: the revision was applied.
	StateSuccess State = "success"
	// StateFailure: the attempt failed; Event.Reason says at which step.
	StateFailure State = "failure"
)

// Event is one thing to tell: a sync attempt of one source began or ended.
type Event struct {
	// Source is the name of the sync (its source). Providers' Sources
	// filters match it.
	Source string
	// URL is the source's repository URL or path. Commit-status providers
	// derive the repository from it when their Repository is empty.
	URL string
	// Revision is the full commit hash, or "" when the source is not Git;
	// commit-status providers skip an event without one.
	Revision string
	// State is where the attempt stands.
	State State
	// Severity is SeverityError for a failure, SeverityInfo otherwise;
	// Notify sets it from State when it is empty.
	Severity Severity
	// Reason is a CamelCase word for machines: "Succeeded",
	// "ValidationFailed", "HookFailed", "HealthCheckFailed", ...
	Reason string
	// Message is one line for people.
	Message string
	// Link is where to see more, or "". Commit statuses use it as their
	// target URL.
	Link string
	// Time is when it happened; Notify sets it to the current time when it
	// is zero.
	Time time.Time
}

// complete fills the fields Notify sets when the caller left them empty.
func (e Event) complete(now time.Time) Event {
	if e.Severity == "" {
		e.Severity = SeverityInfo
		if e.State == StateFailure {
			e.Severity = SeverityError
		}
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	return e
}

// rank orders severities so that a provider's least severity compares with
// an event's; unknown severities rank as errors, to be sent rather than lost.
func (s Severity) rank() int {
	if s == SeverityInfo {
		return 0
	}
	return 1
}

// shortRevision is the abbreviated hash people read in messages.
func shortRevision(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}
