// Command printprotos writes the third-party .proto files that our schemas
// import (protovalidate's buf/validate and google/api) into a directory, so
// that buf can compile offline.
//
// No reachable registry ships these files as source, but the Go packages
// that go.mod pins embed their descriptors; printing those descriptors gives
// sources that match the pinned versions exactly.
//
//	go run ./internal/cmd/printprotos third_party/proto
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	_ "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate" // registers buf/validate/validate.proto
	"github.com/jhump/protoreflect/v2/protoprint"
	_ "google.golang.org/genproto/googleapis/api"             // registers google/api/launch_stage.proto
	_ "google.golang.org/genproto/googleapis/api/annotations" // registers google/api/*.proto
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// prefixes are the import paths this command owns; google/protobuf is
// built into buf and never printed.
var prefixes = []string{"buf/validate/", "google/api/"}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "printprotos:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: printprotos OUTPUT_DIR")
	}
	var files []protoreflect.FileDescriptor
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if owned(fd.Path()) {
			files = append(files, fd)
		}
		return true
	})
	sort.Slice(files, func(i, j int) bool { return files[i].Path() < files[j].Path() })
	for _, fd := range files {
		imports := fd.Imports()
		for i := range imports.Len() {
			dep := imports.Get(i).Path()
			if !owned(dep) && !strings.HasPrefix(dep, "google/protobuf/") {
				return fmt.Errorf("%s imports %s, which is neither printed nor built in", fd.Path(), dep)
			}
		}
	}
	if len(files) == 0 {
		return errors.New("no descriptors registered")
	}
	var p protoprint.Printer
	if err := p.PrintProtosToFileSystem(files, args[0]); err != nil {
		return fmt.Errorf("print protos: %w", err)
	}
	return nil
}

func owned(path string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}
