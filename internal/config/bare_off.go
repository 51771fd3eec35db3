//go:build !guardload

package config

// bareAllowed: see bare.go. Without the guardload build tag there is no
// -bare flag at all.
const bareAllowed = false
