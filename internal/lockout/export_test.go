package lockout

// Len returns how many account and address keys g currently remembers.
func Len(g *Guard) (accounts, ips int) {
	return g.accounts.len(), g.ips.len()
}

func (t *table[K]) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
