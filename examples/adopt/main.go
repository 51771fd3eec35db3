// Command adopt is a small documents service that adopts Guard: every
// policy is declared in proto/docs/v1/docs.proto, and newServer is all the
// wiring it takes. It serves Connect, gRPC and gRPC-Web on 127.0.0.1:8081,
// keeps documents in memory, and knows two toy tokens (see toyTokens).
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	docsv1 "example.com/adopt/gen/docs/v1"
	"example.com/adopt/gen/docs/v1/docsv1connect"
	"github.com/connectguard/guard"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func main() {
	if err := run(context.Background(), "127.0.0.1:8081"); err != nil {
		log.Fatal(err)
	}
}

// run serves on addr until SIGINT or SIGTERM.
func run(ctx context.Context, addr string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	docs := newStore()
	srv, err := newServer(addr, &documentService{docs: docs}, docs)
	if err != nil {
		return err
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("documents service on http://%s (toy tokens: alice-token, bob-token)", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-drained // in-flight calls finish before run returns
	return nil
}

// newServer is the whole adoption of Guard. guard.New reads the policy of
// every method from the service descriptor and fails, naming the method,
// if one has none or names a resource kind without a resolver. The
// handler gets Guard's interceptor chain (g.HandlerOptions), the mux its
// HTTP layer (g.Handler), and h2c lets gRPC clients in without TLS.
func newServer(addr string, svc docsv1connect.DocumentServiceHandler, docs guard.Resolver) (*http.Server, error) {
	services := []protoreflect.ServiceDescriptor{docsv1.File_docs_v1_docs_proto.Services().ByName("DocumentService")}
	g, err := guard.New(services, guard.WithRoles("member"), guard.WithTokens(toyTokens{}), guard.WithResolver("document", docs))
	if err != nil {
		return nil, err // names each method without a policy, or a resource kind without a resolver
	}
	mux := http.NewServeMux()
	mux.Handle(docsv1connect.NewDocumentServiceHandler(svc, g.HandlerOptions()...))
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // gRPC without TLS (h2c)
	return &http.Server{Addr: addr, Handler: g.Handler(mux), Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}, nil
}
