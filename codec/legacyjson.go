package codec

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// Payloads written before gust's message structs had JSON tags.
//
// Until then every field was encoded under its Go name ("InstanceType");
// now the fields have snake_case tags ("instance_type"), so the Web UI
// shows the names the CLI prints. encoding/json matches a key to a field
// case-insensitively, so "Tenant" still finds the field tagged "tenant",
// but "InstanceType" does not find "instance_type": without help, a payload
// in an older history (the input of a workflow in flight across an upgrade,
// a recorded history a replay test reads) would decode to zero values, and
// the workflow would take another path. LegacyJSONPayloadConverter renames
// those keys before it decodes. It encodes exactly as Temporal's JSON
// converter does.

// JSONDataConverter is Temporal's default data converter with
// LegacyJSONPayloadConverter in place of its JSON converter: it writes the
// same payloads and also reads the Go-named keys of older ones.
// DataConverter adds the codec to it; use this one only where nothing is
// encrypted (tests that replay recorded histories).
func JSONDataConverter() converter.DataConverter {
	return converter.MakeTransferAware(converter.NewCompositeDataConverter(
		converter.NewNilPayloadConverter(),
		converter.NewByteSlicePayloadConverter(),
		// The same order as Temporal's default: both proto converters
		// accept proto.Message, and the first one encodes.
		converter.NewProtoJSONPayloadConverter(),
		converter.NewProtoPayloadConverter(),
		NewLegacyJSONPayloadConverter(),
	))
}

// FailureConverter is Temporal's default failure converter with error
// details decoded by JSONDataConverter. The SDK encodes and decodes
// details (a fleet's FleetResult, a function error's run) with its own
// default data converter unless the client names a failure converter, so
// every client that uses DataConverter sets this one too: then details
// written before the tags read right as well. Details are never
// encrypted, as before.
func FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: JSONDataConverter()})
}

// LegacyJSONPayloadConverter is converter.JSONPayloadConverter with a
// decoder that also reads payloads written before the target type's fields
// had JSON tags. Before decoding, it walks the target type and renames each
// object key that names a struct field by its Go name (compared
// case-insensitively, as encoding/json compares) to the field's JSON name,
// in nested structs, slice and array elements, map values and behind
// pointers. It never renames a map key, a key that already matches a
// field's JSON name, or a key the object also holds under the new name; it
// leaves alone json.RawMessage, []byte, interfaces, and types that decode
// themselves (json.Unmarshaler, encoding.TextUnmarshaler). A payload with
// nothing to rename is decoded as it is.
type LegacyJSONPayloadConverter struct {
	*converter.JSONPayloadConverter
}

// NewLegacyJSONPayloadConverter returns a LegacyJSONPayloadConverter.
func NewLegacyJSONPayloadConverter() *LegacyJSONPayloadConverter {
	return &LegacyJSONPayloadConverter{converter.NewJSONPayloadConverter()}
}

// FromPayload decodes payload into valuePtr, renaming legacy keys first.
func (c *LegacyJSONPayloadConverter) FromPayload(payload *commonpb.Payload, valuePtr any) error {
	data := payload.GetData()
	if t := reflect.TypeOf(valuePtr); t != nil && t.Kind() == reflect.Pointer {
		if renamed, ok := RenameLegacyKeys(data, t.Elem()); ok {
			data = renamed
		}
	}
	if err := json.Unmarshal(data, valuePtr); err != nil {
		return fmt.Errorf("%w: %v", converter.ErrUnableToDecode, err)
	}
	return nil
}

// RenameLegacyKeys returns data, the JSON of a t, with the Go-named keys
// renamed to t's JSON names as LegacyJSONPayloadConverter does, and whether
// anything was renamed. Untouched values keep their bytes; data that is not
// what t expects (another JSON type, invalid JSON) comes back as it is, for
// encoding/json to report.
func RenameLegacyKeys(data []byte, t reflect.Type) ([]byte, bool) {
	if !mayNeedRenames(t) {
		return data, false
	}
	return renameValue(data, t)
}

func renameValue(data []byte, t reflect.Type) ([]byte, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !mayNeedRenames(t) {
		return data, false
	}
	switch t.Kind() {
	case reflect.Struct:
		return renameObject(data, t)
	case reflect.Slice, reflect.Array:
		return renameArray(data, t.Elem())
	case reflect.Map:
		return renameMapValues(data, t.Elem())
	}
	return data, false
}

// member is one key and value of a JSON object, in the order the object
// has them: the key's JSON (quoted, as written) and its decoded string,
// and the value's bytes as they are.
type member struct {
	rawKey []byte
	key    string
	value  []byte
}

func renameObject(data []byte, t reflect.Type) ([]byte, bool) {
	members, ok := splitObject(data)
	if !ok {
		return data, false
	}
	fields := fieldsOf(t)
	// A key already in the new form takes precedence over an old one.
	hasNew := make(map[int]bool)
	for _, m := range members {
		if i, ok := fields.byJSONName(m.key); ok {
			hasNew[i] = true
		}
	}
	changed := false
	for j := range members {
		m := &members[j]
		i, ok := fields.byJSONName(m.key)
		if !ok {
			i, ok = fields.byGoName(m.key)
			if !ok || hasNew[i] {
				continue // unknown to t, or shadowed: encoding/json ignores it
			}
			m.rawKey, _ = json.Marshal(fields.list[i].jsonName) // a string always marshals
			hasNew[i] = true
			changed = true
		}
		if v, ok := renameValue(m.value, fields.list[i].typ); ok {
			m.value = v
			changed = true
		}
	}
	if !changed {
		return data, false
	}
	return joinObject(members), true
}

func renameArray(data []byte, elem reflect.Type) ([]byte, bool) {
	elems, ok := splitArray(data)
	if !ok {
		return data, false
	}
	changed := false
	for i := range elems {
		if v, ok := renameValue(elems[i], elem); ok {
			elems[i] = v
			changed = true
		}
	}
	if !changed {
		return data, false
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e)
	}
	b.WriteByte(']')
	return b.Bytes(), true
}

// renameMapValues renames inside a map's values; the map's own keys are
// data, never field names.
func renameMapValues(data []byte, elem reflect.Type) ([]byte, bool) {
	members, ok := splitObject(data)
	if !ok {
		return data, false
	}
	changed := false
	for j := range members {
		if v, ok := renameValue(members[j].value, elem); ok {
			members[j].value = v
			changed = true
		}
	}
	if !changed {
		return data, false
	}
	return joinObject(members), true
}

func joinObject(members []member) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(m.rawKey)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// The splitters below find the members of an object and the elements of
// an array without decoding them. They skip strings with bytes.IndexByte,
// so a payload's large raw JSON (a function's event) costs little more
// than one pass of memchr. They check structure only; encoding/json
// validates everything when it decodes, so malformed input is never
// accepted, only left as it is.

// splitObject returns the members of the object data holds; ok is false
// when data is not one object.
func splitObject(data []byte) (members []member, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return nil, skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, false
		}
		end, ok := skipString(data, i)
		if !ok {
			return nil, false
		}
		rawKey := data[i:end]
		key := string(rawKey[1 : len(rawKey)-1])
		if bytes.IndexByte(rawKey, '\\') >= 0 && json.Unmarshal(rawKey, &key) != nil {
			return nil, false
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		start := skipSpace(data, i+1)
		if end, ok = skipValue(data, start); !ok {
			return nil, false
		}
		members = append(members, member{rawKey: rawKey, key: key, value: data[start:end]})
		i = skipSpace(data, end)
		switch {
		case i < len(data) && data[i] == ',':
			i = skipSpace(data, i+1)
		case i < len(data) && data[i] == '}':
			return members, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

// splitArray returns the elements of the array data holds; ok is false
// when data is not one array.
func splitArray(data []byte) (elems [][]byte, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return nil, skipSpace(data, i+1) == len(data)
	}
	for {
		end, ok := skipValue(data, i)
		if !ok {
			return nil, false
		}
		elems = append(elems, data[i:end])
		i = skipSpace(data, end)
		switch {
		case i < len(data) && data[i] == ',':
			i = skipSpace(data, i+1)
		case i < len(data) && data[i] == ']':
			return elems, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at data[i].
func skipString(data []byte, i int) (int, bool) {
	i++
	for {
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			return 0, false
		}
		i += j
		backslashes := 0
		for k := i - 1; k >= 0 && data[k] == '\\'; k-- {
			backslashes++
		}
		i++
		if backslashes%2 == 0 {
			return i, true
		}
	}
}

// skipValue returns the index after the value that starts at data[i].
func skipValue(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				end, ok := skipString(data, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	default: // a number, true, false or null
		start := i
		for i < len(data) && !strings.ContainsRune(",}] \t\n\r", rune(data[i])) {
			i++
		}
		return i, i > start
	}
}

// field is a struct field as encoding/json sees it.
type field struct {
	goName, jsonName string
	typ              reflect.Type
}

// structFields are a struct type's JSON fields.
type structFields struct {
	list []field
}

// byJSONName finds the field key decodes into today: an exact match of its
// JSON name first, else a case-insensitive one, as encoding/json does.
func (s structFields) byJSONName(key string) (int, bool) {
	for i, f := range s.list {
		if f.jsonName == key {
			return i, true
		}
	}
	for i, f := range s.list {
		if strings.EqualFold(f.jsonName, key) {
			return i, true
		}
	}
	return 0, false
}

// byGoName finds the field whose Go name key is, ignoring case.
func (s structFields) byGoName(key string) (int, bool) {
	for i, f := range s.list {
		if strings.EqualFold(f.goName, key) {
			return i, true
		}
	}
	return 0, false
}

var fieldCache sync.Map // reflect.Type -> structFields

// fieldsOf lists t's fields as encoding/json encodes them: exported, not
// tagged "-", named by the tag or else by the Go name. The fields of an
// untagged embedded struct are promoted; a field of the outer struct wins
// over a promoted one of the same JSON name.
func fieldsOf(t reflect.Type) structFields {
	if v, ok := fieldCache.Load(t); ok {
		return v.(structFields)
	}
	var s structFields
	seen := map[string]bool{}
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		var embedded []reflect.Type
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := sf.Type
			if sf.Anonymous {
				for ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name == "" && ft.Kind() == reflect.Struct {
					if depth < 8 {
						embedded = append(embedded, ft)
					}
					continue
				}
				if !sf.IsExported() && ft.Kind() != reflect.Struct {
					continue
				}
			} else if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if seen[strings.ToLower(name)] {
				continue
			}
			seen[strings.ToLower(name)] = true
			s.list = append(s.list, field{goName: sf.Name, jsonName: name, typ: sf.Type})
		}
		for _, et := range embedded {
			walk(et, depth+1)
		}
	}
	walk(t, 0)
	v, _ := fieldCache.LoadOrStore(t, s)
	return v.(structFields)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	renameCache     sync.Map // reflect.Type -> bool
)

// mayNeedRenames reports whether a value of type t can hold a key to
// rename: whether t, or a type it contains, has a field whose JSON name
// differs from its Go name by more than case. It is cached per type, so a
// payload of a type without tags costs one map lookup.
func mayNeedRenames(t reflect.Type) bool {
	if v, ok := renameCache.Load(t); ok {
		return v.(bool)
	}
	v := needsRenames(t, map[reflect.Type]bool{})
	renameCache.Store(t, v)
	return v
}

func needsRenames(t reflect.Type, visiting map[reflect.Type]bool) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if visiting[t] || decodesItself(t) {
		return false
	}
	visiting[t] = true
	defer delete(visiting, t)
	switch t.Kind() {
	case reflect.Struct:
		for _, f := range fieldsOf(t).list {
			if !strings.EqualFold(f.goName, f.jsonName) || needsRenames(f.typ, visiting) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return false // []byte is base64, json.RawMessage raw JSON
		}
		return needsRenames(t.Elem(), visiting)
	case reflect.Map:
		return needsRenames(t.Elem(), visiting)
	}
	return false
}

// decodesItself reports whether encoding/json hands t's JSON to t's own
// method.
func decodesItself(t reflect.Type) bool {
	return t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) ||
		reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)
}
