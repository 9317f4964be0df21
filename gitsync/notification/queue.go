package notification

import (
	"context"
	"sync"
)

// queue holds the events waiting for one provider. It is bounded: a push
// to a full queue drops the oldest event, so that a slow endpoint never
// holds up a sync.
type queue struct {
	mu     sync.Mutex
	events []Event
	size   int
	// ready has a token whenever events may be waiting.
	ready chan struct{}
}

func newQueue(size int) *queue {
	return &queue{size: size, ready: make(chan struct{}, 1)}
}

// push adds e, and returns the event it dropped to make room, if any.
func (q *queue) push(e Event) (dropped Event, ok bool) {
	q.mu.Lock()
	if len(q.events) >= q.size {
		dropped, ok = q.events[0], true
		q.events[0] = Event{}
		q.events = q.events[1:]
	}
	q.events = append(q.events, e)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return dropped, ok
}

// pop waits for the oldest event and takes it; it reports false once ctx
// is done.
func (q *queue) pop(ctx context.Context) (Event, bool) {
	for ctx.Err() == nil {
		q.mu.Lock()
		if len(q.events) > 0 {
			e := q.events[0]
			q.events[0] = Event{}
			q.events = q.events[1:]
			q.mu.Unlock()
			return e, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return Event{}, false
		case <-q.ready:
		}
	}
	return Event{}, false
}
