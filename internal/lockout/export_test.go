package lockout

// Len returns how many pair, account and address keys g currently
// remembers.
func Len(g *Memory) (pairs, accounts, ips int) {
	return g.pairs.len(), g.accounts.len(), g.ips.len()
}

func (t *table[K]) len() int {
	if t.m == nil {
		return 0
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m.Len()
}
