package pagetoken_test

import (
	"bytes"
	"fmt"

	"github.com/connectguard/guard/internal/pagetoken"
)

func Example() {
	key := bytes.Repeat([]byte{7}, 32) // in production: 32 random, secret, stable bytes
	codec, err := pagetoken.New(key)
	if err != nil {
		fmt.Println(err)
		return
	}

	tok := codec.Encode("notes|alice", []byte("note-41"))
	cursor, err := codec.Decode("notes|alice", tok)
	fmt.Printf("%s %v\n", cursor, err)

	// Bob cannot page through Alice's list with her token.
	_, err = codec.Decode("notes|bob", tok)
	fmt.Println(err)

	fmt.Println(pagetoken.PageSize(0), pagetoken.PageSize(7), pagetoken.PageSize(1000))
	// Output:
	// note-41 <nil>
	// invalid page token
	// 50 7 100
}
