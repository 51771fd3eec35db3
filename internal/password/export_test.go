package password

// HoldSlot takes one semaphore slot of h, as a running hash would, and
// returns the function that gives it back. Tests use it to fill the
// semaphore deterministically instead of racing a slow hash.
func HoldSlot(h *Hasher) (release func()) {
	h.sem <- struct{}{}
	return func() { <-h.sem }
}

// Slots returns the capacity of h's semaphore and how many slots are taken.
func Slots(h *Hasher) (capacity, inUse int) {
	return cap(h.sem), len(h.sem)
}
