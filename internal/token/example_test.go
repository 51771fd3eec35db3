package token_test

import (
	"fmt"
	"time"

	"github.com/connectguard/guard/internal/token"
)

func Example() {
	key, err := token.GenerateKey()
	if err != nil {
		fmt.Println(err)
		return
	}
	keys, err := token.NewKeys(key)
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	svc := token.New(keys, "https://guard.example", "guard-api",
		token.WithClock(func() time.Time { return now }))

	tok, _, err := svc.Sign("user-42", "session-7", []string{"editor"})
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := svc.Verify(tok)
	fmt.Println(c.Subject, c.SessionID, c.Roles, c.ExpiresAt.Sub(c.IssuedAt), err)

	// Any tampering is refused with the same error.
	forged := []byte(tok)
	if i := len(forged) - 10; forged[i] == 'A' {
		forged[i] = 'B'
	} else {
		forged[i] = 'A'
	}
	_, err = svc.Verify(string(forged))
	fmt.Println(err)

	// So is the token once it expires (after a 30-second leeway).
	later := token.New(keys, "https://guard.example", "guard-api",
		token.WithClock(func() time.Time { return now.Add(16 * time.Minute) }))
	_, err = later.Verify(tok)
	fmt.Println(err)
	// Output:
	// user-42 session-7 [editor] 15m0s <nil>
	// invalid token
	// token expired
}
