package policy

// An Option configures NewTable.
type Option interface{ apply(*config) }

type config struct {
	roles  []string
	scopes []string
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithRoles lists the role names policies may use; any other name is a
// startup error (a typo must not silently lock everyone out or in). By
// default any non-empty name is accepted; WithRoles() with no names accepts
// none.
func WithRoles(roles ...string) Option {
	return optionFunc(func(c *config) { c.roles = append([]string{}, roles...) })
}

// WithScopes lists the scope names policies may use. By default any name is
// accepted.
func WithScopes(scopes ...string) Option {
	return optionFunc(func(c *config) { c.scopes = append([]string{}, scopes...) })
}
