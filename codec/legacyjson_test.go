package codec_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/gust-dev/gust/codec"
)

// The shapes gust's messages have: tagged fields that were Go-named before,
// nesting through structs, pointers, slices and map values, raw JSON and
// bytes that must pass untouched, and a type that decodes itself.
type legacyInner struct {
	InstanceIDs []string          `json:"instance_ids"`
	Backoff     time.Duration     `json:"backoff_ns"`
	Tags        map[string]string `json:"tags"`
}

type legacyOuter struct {
	Tenant   string                 `json:"tenant,omitempty"` // differs by case only
	FleetID  string                 `json:"fleet_id"`
	Payload  json.RawMessage        `json:"payload"`
	Code     []byte                 `json:"code"`
	At       time.Time              `json:"at"`
	Inner    legacyInner            `json:"inner"`
	Resume   *legacyInner           `json:"resume,omitempty"`
	Chunks   []legacyInner          `json:"chunks"`
	ByZone   map[string]legacyInner `json:"by_zone"`
	Self     selfDecoding           `json:"self"`
	Untagged int
	Skipped  string `json:"-"`
}

// selfDecoding keeps the JSON it was given, so a test sees whether the
// converter rewrote it.
type selfDecoding struct{ raw string }

func (s *selfDecoding) UnmarshalJSON(b []byte) error { s.raw = string(b); return nil }
func (s selfDecoding) MarshalJSON() ([]byte, error) {
	if s.raw == "" {
		return []byte("null"), nil
	}
	return []byte(s.raw), nil
}

func legacyValue() legacyOuter {
	inner := func(id string) legacyInner {
		return legacyInner{InstanceIDs: []string{id}, Backoff: 3 * time.Second, Tags: map[string]string{"InstanceIDs": "a map key, never renamed"}}
	}
	resume := inner("i-resume")
	return legacyOuter{
		Tenant:   "acme",
		FleetID:  "web",
		Payload:  json.RawMessage(`{"FleetID":"raw JSON is the user's","x":"<&>"}`),
		Code:     []byte{0, 1, 2},
		At:       time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Inner:    inner("i-inner"),
		Resume:   &resume,
		Chunks:   []legacyInner{inner("i-chunk0"), inner("i-chunk1")},
		ByZone:   map[string]legacyInner{"FleetID": inner("i-zone")},
		Self:     selfDecoding{raw: `{"FleetID":"mine"}`},
		Untagged: 7,
	}
}

// legacyPayload is legacyValue as gust wrote it before the tags: every key
// its Go name.
const legacyPayload = `{"Tenant":"acme","FleetID":"web",` +
	`"Payload":{"FleetID":"raw JSON is the user's","x":"<&>"},"Code":"AAEC","At":"2026-01-02T03:04:05.000000006Z",` +
	`"Inner":{"InstanceIDs":["i-inner"],"Backoff":3000000000,"Tags":{"InstanceIDs":"a map key, never renamed"}},` +
	`"Resume":{"InstanceIDs":["i-resume"],"Backoff":3000000000,"Tags":{"InstanceIDs":"a map key, never renamed"}},` +
	`"Chunks":[{"InstanceIDs":["i-chunk0"],"Backoff":3000000000,"Tags":{"InstanceIDs":"a map key, never renamed"}},` +
	`{"InstanceIDs":["i-chunk1"],"Backoff":3000000000,"Tags":{"InstanceIDs":"a map key, never renamed"}}],` +
	`"ByZone":{"FleetID":{"InstanceIDs":["i-zone"],"Backoff":3000000000,"Tags":{"InstanceIDs":"a map key, never renamed"}}},` +
	`"Self":{"FleetID":"mine"},"Untagged":7}`

func jsonPayload(data string) *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
		Data:     []byte(data),
	}
}

func TestLegacyPayloadDecodesLikeTheTaggedOne(t *testing.T) {
	want := legacyValue()
	var plain legacyOuter
	require.NoError(t, json.Unmarshal([]byte(legacyPayload), &plain))
	require.NotEqual(t, want, plain, "the control: encoding/json alone loses the renamed fields")
	require.Empty(t, plain.FleetID)

	for name, dc := range map[string]converter.DataConverter{
		"JSONDataConverter": codec.JSONDataConverter(),
		"DataConverter":     codec.DataConverter(newKey(t)),
	} {
		t.Run(name, func(t *testing.T) {
			var old legacyOuter
			require.NoError(t, dc.FromPayload(jsonPayload(legacyPayload), &old))
			require.Equal(t, want, old)

			p, err := dc.ToPayload(want)
			require.NoError(t, err)
			require.Contains(t, string(p.Data), `"fleet_id":"web"`, "encodes with the tags")
			var current legacyOuter
			require.NoError(t, dc.FromPayload(p, &current))
			// encoding/json writes <&> in raw JSON as \u003c\u0026\u003e,
			// the same JSON.
			require.JSONEq(t, string(want.Payload), string(current.Payload))
			current.Payload = want.Payload
			require.Equal(t, want, current)
		})
	}
}

func TestLegacyRenamesOnlyWhatItMust(t *testing.T) {
	typ := reflect.TypeFor[legacyOuter]()

	// A payload in today's form is decoded as it is.
	current, err := json.Marshal(legacyValue())
	require.NoError(t, err)
	out, renamed := codec.RenameLegacyKeys(current, typ)
	require.False(t, renamed)
	require.Equal(t, current, out)

	// Raw JSON and self-decoding values keep their bytes, map keys stay.
	out, renamed = codec.RenameLegacyKeys([]byte(legacyPayload), typ)
	require.True(t, renamed)
	s := string(out)
	require.Contains(t, s, `"fleet_id":"web"`)
	require.Contains(t, s, `"Tenant":"acme"`, "a key that differs by case only already decodes")
	require.Contains(t, s, `"Payload":{"FleetID":"raw JSON is the user's","x":"<&>"}`)
	require.Contains(t, s, `"Self":{"FleetID":"mine"}`)
	require.Contains(t, s, `"by_zone":{"FleetID":{`)
	require.Contains(t, s, `"Tags":{"InstanceIDs":"a map key, never renamed"}`)
	require.Contains(t, s, `"Untagged":7`)

	// When both forms are present, the new one wins and the old is ignored,
	// as encoding/json ignores an unknown key.
	var v legacyOuter
	require.NoError(t, codec.JSONDataConverter().FromPayload(jsonPayload(`{"FleetID":"old","fleet_id":"new","Extra":1}`), &v))
	require.Equal(t, "new", v.FleetID)
	require.NoError(t, codec.JSONDataConverter().FromPayload(jsonPayload(`{"fleet_id":"new","FLEETID":"old"}`), &v))
	require.Equal(t, "new", v.FleetID)

	// Go names match case-insensitively, as encoding/json matches.
	v = legacyOuter{}
	require.NoError(t, codec.JSONDataConverter().FromPayload(jsonPayload(`{"fleetId":"camel","inner":{"instanceIds":["i-1"]}}`), &v))
	require.Equal(t, "camel", v.FleetID)
	require.Equal(t, []string{"i-1"}, v.Inner.InstanceIDs)

	// Strings holding quotes, brackets and escapes, escaped keys and
	// whitespace between tokens are read as encoding/json reads them.
	v = legacyOuter{}
	require.NoError(t, codec.JSONDataConverter().FromPayload(jsonPayload(` {
		"Fleet\u0049D" : "a\"}{[\\" ,	"Inner": {"InstanceIDs": ["x\\", "]"]} ,
		"Payload" : {"s":"}\"]"} } `), &v))
	require.Equal(t, `a"}{[\`, v.FleetID)
	require.Equal(t, []string{`x\`, "]"}, v.Inner.InstanceIDs)
	require.JSONEq(t, `{"s":"}\"]"}`, string(v.Payload))

	// Top-level slices, maps and pointers are walked too.
	var list []*legacyInner
	require.NoError(t, codec.JSONDataConverter().FromPayload(jsonPayload(`[{"InstanceIDs":["a"]},null]`), &list))
	require.Equal(t, []*legacyInner{{InstanceIDs: []string{"a"}}, nil}, list)
	var byKey map[string]legacyInner
	require.NoError(t, codec.JSONDataConverter().FromPayload(jsonPayload(`{"Backoff":{"Backoff":5}}`), &byKey))
	require.Equal(t, map[string]legacyInner{"Backoff": {Backoff: 5}}, byKey)
}

func TestLegacyDecodeErrorsAreEncodingJSONs(t *testing.T) {
	dc := codec.JSONDataConverter()
	for _, bad := range []string{`{"FleetID":`, `{"FleetID":1}`, `[1]`, `"x"`} {
		var v legacyOuter
		err := dc.FromPayload(jsonPayload(bad), &v)
		require.Error(t, err, bad)
		require.ErrorIs(t, err, converter.ErrUnableToDecode, bad)
	}
	var v legacyOuter
	require.NoError(t, dc.FromPayload(jsonPayload(`null`), &v))
	var n int
	require.NoError(t, dc.FromPayload(jsonPayload(`42`), &n))
	require.Equal(t, 42, n)
}

// Nothing changes on the way out: every payload is byte for byte what
// Temporal's default converter writes.
func TestJSONDataConverterEncodesAsTheDefault(t *testing.T) {
	def := converter.GetDefaultDataConverter()
	for _, v := range []any{legacyValue(), "s", 1, nil, []byte("b"), map[string]any{"k": "<&>"}, &commonpb.Payload{Data: []byte("proto")}} {
		got, err := codec.JSONDataConverter().ToPayload(v)
		require.NoError(t, err)
		want, err := def.ToPayload(v)
		require.NoError(t, err)
		require.Equal(t, want.String(), got.String())
	}
}

// A large payload with nothing to rename is read once more, no more:
// the legacy-key converter against Temporal's default, in one run.
func BenchmarkDecodeInvokeLike(b *testing.B) {
	type invokeLike struct {
		RequestID string          `json:"request_id"`
		Payload   json.RawMessage `json:"payload"`
	}
	data, _ := json.Marshal(invokeLike{RequestID: "r", Payload: json.RawMessage(`"` + strings.Repeat("x", 1<<20) + `"`)})
	p := jsonPayload(string(data))
	for _, c := range []struct {
		name string
		dc   converter.DataConverter
	}{{"legacy", codec.JSONDataConverter()}, {"plain", converter.GetDefaultDataConverter()}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var v invokeLike
				if err := c.dc.FromPayload(p, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Renaming keeps valid JSON valid and invalid JSON invalid (for
// encoding/json to report), and changes nothing it does not report.
func FuzzRenameLegacyKeys(f *testing.F) {
	f.Add([]byte(legacyPayload))
	f.Add([]byte(`{"FleetID":"a\"b","Inner":{"InstanceIDs":["x"]},"ByZone":{"k":{"Backoff":1}}}`))
	f.Add([]byte(`[{"FleetID":1}]`))
	typ := reflect.TypeFor[legacyOuter]()
	f.Fuzz(func(t *testing.T, data []byte) {
		out, renamed := codec.RenameLegacyKeys(data, typ)
		if !renamed {
			require.Equal(t, data, out)
			return
		}
		require.Equal(t, json.Valid(data), json.Valid(out), "%q became %q", data, out)
	})
}
