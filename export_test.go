package guard

// WithoutEarlyRefusal returns a copy of g whose HTTP layer leaves every
// refusal to the interceptor chain, as before the early refusal existed:
// benchmarks and tests compare the two.
func WithoutEarlyRefusal(g *Guard) *Guard {
	c := *g
	c.refuseEarly = false
	return &c
}
