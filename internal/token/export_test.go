package token

import "crypto/sha256"

// CacheLen returns how many verified tokens s remembers.
func CacheLen(s *Service) int {
	if s.cache == nil {
		return 0
	}
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return len(s.cache.m)
}

// Cached reports whether s remembers token as verified.
func Cached(s *Service, token string) bool {
	if s.cache == nil {
		return false
	}
	_, _, ok := s.cache.get(sha256.Sum256([]byte(token)))
	return ok
}
