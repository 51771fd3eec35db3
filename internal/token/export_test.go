package token

import "crypto/sha256"

// CacheLen returns how many verified tokens s remembers, after the cache's
// pending maintenance (evictions and expiries) has run.
func CacheLen(s *Service) int {
	if s.cache == nil {
		return 0
	}
	s.cache.CleanUp()
	return s.cache.EstimatedSize()
}

// Cached reports whether s remembers token as verified. It leaves the
// cache's eviction policy as it was.
func Cached(s *Service, token string) bool {
	if s.cache == nil {
		return false
	}
	_, ok := s.cache.GetEntryQuietly(sha256.Sum256([]byte(token)))
	return ok
}
