package server

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/internal/config"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestRefusesMethodWithoutPolicy: mounting a service with an RPC that has
// no policy fails, naming the method, so such a server never starts.
func TestRefusesMethodWithoutPolicy(t *testing.T) {
	t.Parallel()
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("leaky/v1/leaky.proto"),
		Package:    proto.String("leaky.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"google/protobuf/empty.proto"},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("LeakyService"),
			Method: []*descriptorpb.MethodDescriptorProto{{
				Name:       proto.String("Dump"),
				InputType:  proto.String(".google.protobuf.Empty"),
				OutputType: proto.String(".google.protobuf.Empty"),
			}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(nil, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	mounted := false
	leaky := service{fd.Services().Get(0), func(...connect.HandlerOption) (string, http.Handler) {
		mounted = true
		return "/leaky.v1.LeakyService/", http.NotFoundHandler()
	}}
	_, err = mount(cfg, []service{leaky}, deps{})
	if err == nil {
		t.Fatal("got a handler, want an error")
	}
	if !strings.Contains(err.Error(), "leaky.v1.LeakyService.Dump has no policy") {
		t.Errorf("got error %q, want it to name leaky.v1.LeakyService.Dump", err)
	}
	if mounted {
		t.Error("got the service mounted, want nothing mounted")
	}
}

// TestRunRefusesUnsafeConfig: Run stops before opening anything when the
// configuration is unsafe.
func TestRunRefusesUnsafeConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	err := Run(context.Background(), []string{"-db=" + dir + "/x.db", "-cors-origins=*"},
		func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "wildcards are refused") {
		t.Errorf("got %v, want a refusal of the CORS wildcard", err)
	}
}
