package lockout

// Len returns how many pair, account and address keys g currently
// remembers.
func Len(g *Guard) (pairs, accounts, ips int) {
	return g.pairs.len(), g.accounts.len(), g.ips.len()
}

func (t *table[K]) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
