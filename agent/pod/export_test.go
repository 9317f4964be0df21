package pod

// ImagesInFlight is the number of images the runner's puller keeps a lock
// for: those whose pulls have started and not ended.
func (r *Runner) ImagesInFlight() int {
	r.puller.mu.Lock()
	defer r.puller.mu.Unlock()
	return len(r.puller.locks)
}
