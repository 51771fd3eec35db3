package safewire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Codecs returns handler options that replace connect-go's protobuf and
// JSON codecs with ones that behave the same except on a message that
// cannot be decoded: the caller is told only that it is not valid protobuf
// or JSON (connect-go's codecs name the Go type and echo the input), and
// the detail is logged at Debug. Give them to every handler, with
// WithHandlerOptions or after the other options.
func Codecs(log *slog.Logger) connect.HandlerOption {
	return connect.WithHandlerOptions(
		connect.WithCodec(&protoCodec{log: log}),
		connect.WithCodec(&jsonCodec{name: "json", log: log}),
		connect.WithCodec(&jsonCodec{name: "json; charset=utf-8", log: log}),
	)
}

var (
	errNotProtobuf = errors.New("request message is not valid protobuf")
	errNotJSON     = errors.New("request message is not valid JSON")
)

func asProto(message any) (proto.Message, error) {
	m, ok := message.(proto.Message)
	if !ok {
		// A wiring bug, never the caller's input; the text reaches only
		// the log, through the recovery and error paths.
		return nil, fmt.Errorf("%T is not a proto.Message", message)
	}
	return m, nil
}

// protoCodec is connect-go's binary codec with safe decode errors.
type protoCodec struct{ log *slog.Logger }

func (*protoCodec) Name() string { return "proto" }

func (*protoCodec) IsBinary() bool { return true }

func (*protoCodec) Marshal(message any) ([]byte, error) {
	m, err := asProto(message)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(m)
}

func (*protoCodec) MarshalAppend(dst []byte, message any) ([]byte, error) {
	m, err := asProto(message)
	if err != nil {
		return nil, err
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

func (*protoCodec) MarshalStable(message any) ([]byte, error) {
	m, err := asProto(message)
	if err != nil {
		return nil, err
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

func (c *protoCodec) Unmarshal(data []byte, message any) error {
	m, err := asProto(message)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(data, m); err != nil {
		c.log.Debug("request message not decoded", "codec", "proto", "message", m.ProtoReflect().Descriptor().FullName(), "error", err)
		return errNotProtobuf
	}
	return nil
}

// jsonCodec is connect-go's JSON codec with safe decode errors. Like
// connect-go's, it discards unknown fields, so clients and servers need not
// share exactly one version of the schema.
type jsonCodec struct {
	name string
	log  *slog.Logger
}

func (c *jsonCodec) Name() string { return c.name }

func (*jsonCodec) IsBinary() bool { return false }

func (*jsonCodec) Marshal(message any) ([]byte, error) {
	m, err := asProto(message)
	if err != nil {
		return nil, err
	}
	return protojson.MarshalOptions{}.Marshal(m)
}

func (*jsonCodec) MarshalAppend(dst []byte, message any) ([]byte, error) {
	m, err := asProto(message)
	if err != nil {
		return nil, err
	}
	return protojson.MarshalOptions{}.MarshalAppend(dst, m)
}

func (c *jsonCodec) MarshalStable(message any) ([]byte, error) {
	out, err := c.Marshal(message)
	if err != nil {
		return nil, err
	}
	// protojson's whitespace varies; compacting makes the bytes stable.
	compact := bytes.NewBuffer(out[:0])
	if err := json.Compact(compact, out); err != nil {
		return nil, err
	}
	return compact.Bytes(), nil
}

func (c *jsonCodec) Unmarshal(data []byte, message any) error {
	m, err := asProto(message)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return errNotJSON
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, m); err != nil {
		c.log.Debug("request message not decoded", "codec", c.name, "message", m.ProtoReflect().Descriptor().FullName(), "error", err)
		return errNotJSON
	}
	return nil
}
