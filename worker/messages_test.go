package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/codec"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/workflows"
)

// The messages that cross Temporal's boundary are what the Web UI shows and
// what histories hold: every workflow's and activity's inputs and results
// as register() registers them, plus those no signature names (updates,
// queries and error details).

// registry records what register() registers.
type registry struct {
	sdkworker.Registry // nil: any other method panics
	workflows          []any
	activities         []any
}

func (r *registry) RegisterWorkflow(w any) { r.workflows = append(r.workflows, w) }
func (r *registry) RegisterActivity(a any) { r.activities = append(r.activities, a) }

// messageTypes lists the registered workflows' and activities' parameter
// and result types (contexts and errors aside) and the messages of
// updates, queries, signals and error details, once each, in a stable
// order.
func messageTypes(t *testing.T) []reflect.Type {
	t.Helper()
	r := &registry{}
	register(r, Options{})
	require.NotEmpty(t, r.workflows)
	require.NotEmpty(t, r.activities)

	var types []reflect.Type
	add := func(ts ...reflect.Type) {
		for _, typ := range ts {
			if typ == reflect.TypeFor[context.Context]() || typ == reflect.TypeFor[workflow.Context]() || typ == reflect.TypeFor[error]() {
				continue
			}
			if !slices.Contains(types, typ) {
				types = append(types, typ)
			}
		}
	}
	signature := func(fn reflect.Type, skip int) {
		for i := skip; i < fn.NumIn(); i++ {
			add(fn.In(i))
		}
		for i := range fn.NumOut() {
			add(fn.Out(i))
		}
	}
	for _, w := range r.workflows {
		signature(reflect.TypeOf(w), 0)
	}
	for _, a := range r.activities {
		at := reflect.TypeOf(a)
		for i := range at.NumMethod() {
			signature(at.Method(i).Type, 1) // the receiver
		}
	}
	add(
		reflect.TypeFor[workflows.ScaleInput](), reflect.TypeFor[workflows.ScaleResult](), // ScaleUpdate
		reflect.TypeFor[workflows.CancelInput](), reflect.TypeFor[workflows.CancelResult](), // CancelUpdate, CancelSignal
		reflect.TypeFor[workflows.FleetStatus](),                                                       // StatusQuery
		reflect.TypeFor[providers.FunctionError](), reflect.TypeFor[activities.InvokeFunctionResult](), // function error details
		reflect.TypeFor[activities.LaunchResult](), // TooManyInstances details
	)
	return types
}

// gustStructs returns the struct types of gust's packages that values of
// types hold, directly or inside pointers, slices and maps.
func gustStructs(types []reflect.Type) []reflect.Type {
	var out []reflect.Type
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			walk(t.Elem())
		case reflect.Struct:
			if !strings.HasPrefix(t.PkgPath(), "github.com/gust-dev/gust/") || slices.Contains(out, t) {
				return
			}
			out = append(out, t)
			for i := range t.NumField() {
				walk(t.Field(i).Type)
			}
		}
	}
	for _, t := range types {
		walk(t)
	}
	return out
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// TestMessagesHaveSnakeCaseJSONNames: the Web UI shows the names the CLI
// prints, through a JSON tag on every field of every message.
func TestMessagesHaveSnakeCaseJSONNames(t *testing.T) {
	structs := gustStructs(messageTypes(t))
	require.Greater(t, len(structs), 30, "the walk finds the messages")
	for _, st := range structs {
		for i := range st.NumField() {
			f := st.Field(i)
			if !f.IsExported() {
				continue
			}
			tag, ok := f.Tag.Lookup("json")
			name, _, _ := strings.Cut(tag, ",")
			if tag == "-" {
				continue
			}
			if !ok || !snakeCase.MatchString(name) {
				t.Errorf("%s.%s: JSON name %q is not snake_case (tag %q)", st, f.Name, name, tag)
			}
			if f.Type == reflect.TypeFor[time.Duration]() && !strings.HasSuffix(name, "_ns") {
				t.Errorf("%s.%s: a time.Duration encodes as nanoseconds; name it *_ns, not %q", st, f.Name, name)
			}
		}
	}
}

// TestLegacyMessagesDecode: every message, as gust wrote it before the tags
// (every key its Go name), decodes through the data converter to the same
// value as today's encoding, so workflows in flight across the upgrade and
// recorded histories read right.
func TestLegacyMessagesDecode(t *testing.T) {
	dc := codec.JSONDataConverter()
	types := messageTypes(t)
	require.Greater(t, len(types), 25)
	renamed := 0
	for _, typ := range types {
		if typ == reflect.TypeFor[workflows.FleetStatus]() {
			continue // always had JSON names: TestFleetStatusReadsOlderWorkers
		}
		t.Run(typ.String(), func(t *testing.T) {
			want := reflect.New(typ)
			n := 0
			populate(want.Elem(), &n, 0)

			p, err := dc.ToPayload(want.Elem().Interface())
			require.NoError(t, err)
			got := reflect.New(typ)
			require.NoError(t, dc.FromPayload(p, got.Interface()))
			require.Equal(t, want.Elem().Interface(), got.Elem().Interface(), "today's encoding: %s", p.Data)

			old, err := json.Marshal(goNamed(want.Elem()))
			require.NoError(t, err)
			p.Data = old
			got = reflect.New(typ)
			require.NoError(t, dc.FromPayload(p, got.Interface()))
			require.Equal(t, want.Elem().Interface(), got.Elem().Interface(), "the Go-named encoding: %s", old)

			plain := reflect.New(typ)
			require.NoError(t, json.Unmarshal(old, plain.Interface()))
			if !reflect.DeepEqual(want.Elem().Interface(), plain.Elem().Interface()) {
				renamed++ // encoding/json alone would have lost fields
			}
		})
	}
	require.Greater(t, renamed, 20, "the control: most messages need the renames")
}

// TestFleetStatusReadsOlderWorkers: a CLI that queries a worker not yet
// upgraded reads its status, which named the state "phase", gave times to
// min and target in nanoseconds and unset times as the zero time.
func TestFleetStatusReadsOlderWorkers(t *testing.T) {
	old := `{"fleet_id":"web","phase":"filling","min":2,"target":5,"running":3,` +
		`"started_at":"2026-01-02T03:04:05Z","min_reached_at":"2026-01-02T03:04:07.5Z","target_reached_at":"0001-01-01T00:00:00Z",` +
		`"time_to_min_ns":2500000000,"time_to_target_ns":0}`
	var st workflows.FleetStatus
	require.NoError(t, json.Unmarshal([]byte(old), &st))
	require.Equal(t, workflows.PhaseFilling, st.Phase)
	require.EqualValues(t, 2500, st.TimeToMinMS)
	require.Zero(t, st.TimeToTargetMS)
	require.NotNil(t, st.MinReachedAt)
	require.Equal(t, time.Date(2026, 1, 2, 3, 4, 7, 5e8, time.UTC), *st.MinReachedAt)
	require.Nil(t, st.TargetReachedAt, "the zero time is unset")

	b, err := json.Marshal(st)
	require.NoError(t, err)
	s := string(b)
	require.Contains(t, s, `"state":"filling"`)
	require.Contains(t, s, `"time_to_min_ms":2500`)
	require.Contains(t, s, `"target_reached_at":null`)
	require.NotContains(t, s, "phase")
	require.NotContains(t, s, "_ns")
	var again workflows.FleetStatus
	require.NoError(t, json.Unmarshal(b, &again))
	require.Equal(t, st, again)
}

// populate fills v with distinct non-zero values: n counts them.
func populate(v reflect.Value, n *int, depth int) {
	*n++
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, *n, 0, time.UTC)))
		return
	case v.Type() == reflect.TypeFor[json.RawMessage]():
		v.SetBytes([]byte(fmt.Sprintf(`{"FleetID":"raw JSON %d, never renamed"}`, *n)))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if depth < 4 {
			v.Set(reflect.New(v.Type().Elem()))
			populate(v.Elem(), n, depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() && f.Tag.Get("json") != "-" {
				populate(v.Field(i), n, depth+1)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte{0, byte(*n), 255})
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			populate(v.Index(i), n, depth+1)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		val := reflect.New(v.Type().Elem()).Elem()
		populate(val, n, depth+1)
		// A key like a Go field name: map keys are data, never renamed.
		v.SetMapIndex(reflect.ValueOf("FleetID").Convert(v.Type().Key()), val)
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	case reflect.Bool:
		v.SetBool(true)
	}
}

// goNamed is v as gust encoded it before its messages had JSON tags: every
// field under its Go name. Values that encode themselves (times, raw JSON)
// encode as they always did.
func goNamed(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type().Implements(reflect.TypeFor[json.Marshaler]()) {
		return v.Interface()
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return goNamed(v.Elem())
	case reflect.Struct:
		m := map[string]any{}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() && f.Tag.Get("json") != "-" {
				m[f.Name] = goNamed(v.Field(i))
			}
		}
		return m
	case reflect.Slice:
		if v.IsNil() || v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Interface()
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = goNamed(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v.Interface()
		}
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[k.String()] = goNamed(v.MapIndex(k))
		}
		return out
	}
	return v.Interface()
}
