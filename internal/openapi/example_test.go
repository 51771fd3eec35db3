package openapi_test

import (
	"bytes"
	"fmt"
	"strings"

	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/internal/openapi"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The document of one service: its operations, by path and method.
func ExampleWrite() {
	services := []protoreflect.ServiceDescriptor{notesv1.File_guard_notes_v1_notes_proto.Services().ByName("NoteService")}
	table, err := policy.NewTable(services)
	if err != nil {
		fmt.Println(err)
		return
	}
	var b bytes.Buffer
	info := openapi.Info{Title: "Notes", Version: "v1", Server: "http://127.0.0.1:8080"}
	if err := openapi.Write(&b, services, table, info); err != nil {
		fmt.Println(err)
		return
	}
	for line := range strings.Lines(b.String()) {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "operationId:") || strings.HasPrefix(line, "  /") {
			fmt.Println(s)
		}
	}
	// Output:
	// /v1/notes:
	// operationId: NoteService_ListNotes
	// operationId: NoteService_CreateNote
	// /v1/notes/{id}:
	// operationId: NoteService_DeleteNote
	// operationId: NoteService_GetNote
	// operationId: NoteService_UpdateNote
	// /v1/notes/{id}/shares:
	// operationId: NoteService_ShareNote
}
