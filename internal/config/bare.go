//go:build guardload

package config

// bareAllowed registers -bare: only in the load harness's builds (the
// guardload build tag), never in the server people run.
const bareAllowed = true
