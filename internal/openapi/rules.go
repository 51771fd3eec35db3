package openapi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fieldRules returns fd's protovalidate rules, or nil when it has none or
// they are always ignored.
func fieldRules(fd protoreflect.FieldDescriptor) *validate.FieldRules {
	r, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	if r.GetIgnore() == validate.Ignore_IGNORE_ALWAYS {
		return nil
	}
	return r
}

// isRequired reports whether protovalidate requires fd to be set.
func isRequired(fd protoreflect.FieldDescriptor) bool {
	return fieldRules(fd).GetRequired()
}

// describe appends a sentence to a schema's description.
func describe(s obj, text string) {
	if d, _ := s["description"].(string); d != "" {
		text = d + " " + text
	}
	s["description"] = text
}

// applyRules adds to s what JSON Schema can say of the type-specific rules
// in r, and says the rest in the description.
func applyRules(s obj, fd protoreflect.FieldDescriptor, r *validate.FieldRules) error {
	if r.GetType() == nil {
		return nil
	}
	if r.GetIgnore() == validate.Ignore_IGNORE_IF_ZERO_VALUE {
		describe(s, "Its rules apply only when it is set (not empty or zero).")
	}
	switch t := r.GetType().(type) {
	case *validate.FieldRules_String_:
		applyStringRules(s, t.String_)
	case *validate.FieldRules_Enum:
		return applyEnumRules(s, fd.Enum(), t.Enum)
	case *validate.FieldRules_Duration:
		applyDurationRules(s, t.Duration)
	case *validate.FieldRules_Repeated, *validate.FieldRules_Map:
		// listField and mapField apply them to the array or object.
	default:
		typeRules := oneofValue(r.ProtoReflect(), "type")
		if typeRules == nil {
			return nil
		}
		if numericKind(fd.Kind()) {
			applyNumericRules(s, typeRules)
		} else {
			describe(s, fmt.Sprintf("Further %s rules are checked by protovalidate.", typeRules.Descriptor().Name()))
		}
	}
	return nil
}

// oneofValue returns the message set in m's oneof name, or nil.
func oneofValue(m protoreflect.Message, name protoreflect.Name) protoreflect.Message {
	od := m.Descriptor().Oneofs().ByName(name)
	if od == nil {
		return nil
	}
	fd := m.WhichOneof(od)
	if fd == nil || fd.Message() == nil {
		return nil
	}
	return m.Get(fd).Message()
}

func numericKind(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.BoolKind, protoreflect.StringKind, protoreflect.BytesKind,
		protoreflect.EnumKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

// applyStringRules maps string rules; max_bytes and the other byte counts
// have no JSON Schema keyword, so they go into the description (and
// x-guard-max-bytes).
func applyStringRules(s obj, r *validate.StringRules) {
	if r.HasLen() {
		s["minLength"], s["maxLength"] = r.GetLen(), r.GetLen()
	}
	if r.HasMinLen() {
		s["minLength"] = r.GetMinLen()
	}
	if r.HasMaxLen() {
		s["maxLength"] = r.GetMaxLen()
	}
	if r.HasPattern() {
		s["pattern"] = r.GetPattern()
	}
	if r.HasConst() {
		s["const"] = r.GetConst()
	}
	if len(r.GetIn()) > 0 {
		s["enum"] = strs(r.GetIn())
	}
	if len(r.GetNotIn()) > 0 {
		s["not"] = obj{"enum": strs(r.GetNotIn())}
	}
	if r.HasMaxBytes() {
		s["x-guard-max-bytes"] = r.GetMaxBytes()
		describe(s, fmt.Sprintf("At most %d bytes in UTF-8.", r.GetMaxBytes()))
	}
	if r.HasMinBytes() {
		describe(s, fmt.Sprintf("At least %d bytes in UTF-8.", r.GetMinBytes()))
	}
	if r.HasLenBytes() {
		describe(s, fmt.Sprintf("Exactly %d bytes in UTF-8.", r.GetLenBytes()))
	}
	for _, a := range []struct {
		has         bool
		text, value string
	}{
		{r.HasPrefix(), "Starts with %q.", r.GetPrefix()},
		{r.HasSuffix(), "Ends with %q.", r.GetSuffix()},
		{r.HasContains(), "Contains %q.", r.GetContains()},
		{r.HasNotContains(), "Does not contain %q.", r.GetNotContains()},
	} {
		if a.has {
			describe(s, fmt.Sprintf(a.text, a.value))
		}
	}
	applyStringFormat(s, r)
}

// stringFormats are the well-known string rules with a JSON Schema format.
var stringFormats = map[protoreflect.Name]string{
	"email":    "email",
	"hostname": "hostname",
	"ipv4":     "ipv4",
	"ipv6":     "ipv6",
	"uri":      "uri",
	"uri_ref":  "uri-reference",
	"uuid":     "uuid",
}

// applyStringFormat maps the well_known rule: a format where JSON Schema
// has one, an anyOf for ip, else a sentence.
func applyStringFormat(s obj, r *validate.StringRules) {
	m := r.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("well_known"))
	if fd == nil {
		return
	}
	if fd.Kind() == protoreflect.BoolKind && !m.Get(fd).Bool() {
		return
	}
	name := fd.Name()
	if f, ok := stringFormats[name]; ok {
		s["format"] = f
		return
	}
	if name == "ip" {
		s["anyOf"] = []any{obj{"format": "ipv4"}, obj{"format": "ipv6"}}
		return
	}
	describe(s, fmt.Sprintf("Must be a valid %s (protovalidate rule %s).", strings.ReplaceAll(string(name), "_", " "), name))
}

// applyEnumRules restricts the listed names to those the rules allow.
func applyEnumRules(s obj, ed protoreflect.EnumDescriptor, r *validate.EnumRules) error {
	if ed == nil {
		return fmt.Errorf("enum rules on a field that is not an enum")
	}
	allowed := func(n protoreflect.EnumNumber) bool {
		switch {
		case r.HasConst():
			return int32(n) == r.GetConst()
		case len(r.GetIn()) > 0 && !slices.Contains(r.GetIn(), int32(n)):
			return false
		}
		return !slices.Contains(r.GetNotIn(), int32(n))
	}
	values := ed.Values()
	names := []any{}
	for i := range values.Len() {
		if v := values.Get(i); allowed(v.Number()) {
			names = append(names, string(v.Name()))
		}
	}
	s["enum"] = names
	return nil
}

// applyDurationRules says the bounds in words: JSON Schema cannot compare
// strings such as "60s".
func applyDurationRules(s obj, r *validate.DurationRules) {
	bound := func(text string, has bool, d *durationpb.Duration) {
		if has {
			describe(s, fmt.Sprintf(text, durationString(d.AsDuration().Nanoseconds())))
		}
	}
	bound("At least %s.", r.HasGte(), r.GetGte())
	bound("More than %s.", r.HasGt(), r.GetGt())
	bound("At most %s.", r.HasLte(), r.GetLte())
	bound("Less than %s.", r.HasLt(), r.GetLt())
	bound("Exactly %s.", r.HasConst(), r.GetConst())
}

// applyNumericRules maps the rules that every numeric rule message shares
// (gt, gte, lt, lte, const, in, not_in). For 64-bit integers, which
// protojson writes as strings, the bounds go into the description.
func applyNumericRules(s obj, r protoreflect.Message) {
	get := func(name protoreflect.Name) (protoreflect.Value, bool) {
		fd := r.Descriptor().Fields().ByName(name)
		if fd == nil || !r.Has(fd) {
			return protoreflect.Value{}, false
		}
		return r.Get(fd), true
	}
	asString := s["type"] == "string"
	keywords := []struct {
		rule    protoreflect.Name
		keyword string
		words   string
	}{
		{"gte", "minimum", "At least %s."},
		{"gt", "exclusiveMinimum", "More than %s."},
		{"lte", "maximum", "At most %s."},
		{"lt", "exclusiveMaximum", "Less than %s."},
		{"const", "const", "Exactly %s."},
	}
	lower, hasLower := get("gte")
	if v, ok := get("gt"); ok {
		lower, hasLower = v, true
	}
	upper, hasUpper := get("lte")
	if v, ok := get("lt"); ok {
		upper, hasUpper = v, true
	}
	// gt above lt is protovalidate's "outside the range": no JSON Schema keyword pair says it.
	outside := hasLower && hasUpper && number(lower) > number(upper)
	for _, k := range keywords {
		v, ok := get(k.rule)
		if !ok {
			continue
		}
		if asString || outside {
			describe(s, fmt.Sprintf(k.words, numberText(v)))
			continue
		}
		s[k.keyword] = v.Interface()
	}
	if v, ok := get("in"); ok && v.List().Len() > 0 {
		if asString {
			describe(s, "One of: "+listText(v.List())+".")
		} else {
			s["enum"] = listValues(v.List())
		}
	}
	if v, ok := get("not_in"); ok && v.List().Len() > 0 {
		describe(s, "Not one of: "+listText(v.List())+".")
	}
}

// number is a numeric value as a float64, for comparing bounds.
func number(v protoreflect.Value) float64 {
	switch x := v.Interface().(type) {
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

func numberText(v protoreflect.Value) string {
	switch x := v.Interface().(type) {
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

func listText(l protoreflect.List) string {
	parts := make([]string, l.Len())
	for i := range l.Len() {
		parts[i] = numberText(l.Get(i))
	}
	return strings.Join(parts, ", ")
}

func listValues(l protoreflect.List) []any {
	out := make([]any, l.Len())
	for i := range l.Len() {
		out[i] = l.Get(i).Interface()
	}
	return out
}

// applyRepeatedRules maps the rules on the list itself; its items' rules
// were applied to the items schema.
func applyRepeatedRules(s obj, r *validate.FieldRules) {
	rr := r.GetRepeated()
	if rr.HasMinItems() {
		s["minItems"] = rr.GetMinItems()
	}
	if rr.HasMaxItems() {
		s["maxItems"] = rr.GetMaxItems()
	}
	if rr.GetUnique() {
		s["uniqueItems"] = true
	}
}

// applyMapRules maps the rules on the map itself.
func applyMapRules(s obj, r *validate.FieldRules) {
	mr := r.GetMap()
	if mr.HasMinPairs() {
		s["minProperties"] = mr.GetMinPairs()
	}
	if mr.HasMaxPairs() {
		s["maxProperties"] = mr.GetMaxPairs()
	}
	if k := mr.GetKeys().GetString(); k != nil {
		keys := obj{"type": "string"}
		applyStringRules(keys, k)
		s["propertyNames"] = keys
	}
}

// addFieldCEL says a field's CEL rules in the description: their messages,
// or their expressions when they have none.
func addFieldCEL(s obj, r *validate.FieldRules) {
	for _, c := range r.GetCel() {
		describe(s, celText(c))
	}
	for _, e := range r.GetCelExpression() {
		describe(s, "Must satisfy the CEL expression "+e+".")
	}
}

func celText(c *validate.Rule) string {
	if m := c.GetMessage(); m != "" {
		return sentence(m)
	}
	return "Must satisfy the CEL expression " + c.GetExpression() + "."
}

// sentence ends a rule message with a full stop. It keeps the message's
// case: messages often start with a field name.
func sentence(m string) string {
	if !strings.HasSuffix(m, ".") {
		m += "."
	}
	return m
}

// messageRulesDescription says a message's own rules (CEL, oneof) in words.
func messageRulesDescription(md protoreflect.MessageDescriptor) string {
	r, _ := proto.GetExtension(md.Options(), validate.E_Message).(*validate.MessageRules)
	var parts []string
	for _, c := range r.GetCel() {
		parts = append(parts, celText(c))
	}
	for _, e := range r.GetCelExpression() {
		parts = append(parts, "Must satisfy the CEL expression "+e+".")
	}
	for _, o := range r.GetOneof() {
		text := "At most one of " + strings.Join(o.GetFields(), ", ") + " may be set."
		if o.GetRequired() {
			text = "Exactly one of " + strings.Join(o.GetFields(), ", ") + " must be set."
		}
		parts = append(parts, text)
	}
	return strings.Join(parts, " ")
}
