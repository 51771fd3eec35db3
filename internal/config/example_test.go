package config_test

import (
	"fmt"
	"io"

	"github.com/connectguard/guard/internal/config"
)

func ExampleParse() {
	environ := map[string]string{
		"GUARD_ADDR":           "127.0.0.1:8443",
		"GUARD_ADMIN_PASSWORD": "correct-horse-battery",
	}
	getenv := func(k string) string { return environ[k] }

	c, err := config.Parse([]string{"-addr", "127.0.0.1:9000", "-cors-origins", "https://app.example.com"}, getenv, io.Discard)
	fmt.Println(c.Addr, c.CORSOrigins, c.AdminPassword != "", err)

	_, err = config.Parse([]string{"-cors-origins", "*"}, getenv, io.Discard)
	fmt.Println(err)
	// Output:
	// 127.0.0.1:9000 [https://app.example.com] true <nil>
	// -cors-origins: wildcards are refused because browsers send credentials (session cookies); list each origin, such as https://app.example.com
}
