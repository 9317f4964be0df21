package apiserver

// RememberVerifiedTokens turns the memory of verified tokens on or off, for
// benchmarks to compare.
func RememberVerifiedTokens(s *Server, on bool) {
	s.verified.mu.Lock()
	defer s.verified.mu.Unlock()
	s.verified.off = !on
	clear(s.verified.m)
}
