package boltstore

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
)

// TestSubjEntry checks that a cache entry gives back the subject it was
// made of (nil and empty maps and values kept apart), every value capped,
// sharing no map or value with the subject given or with another read.
func TestSubjEntry(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, s := range map[string]idm.Subject{
		"zero":      {},
		"strings":   {ID: "0123", SSSID: "S-1", Name: "Zoë 日本", Bday: "1980-05-17", Email: "a@b", DateWithdrawn: "2024-01-05", Created: at, Changed: at, Rev: 3},
		"empty_map": {SSSID: "S-2", Extra: map[string]json.RawMessage{}},
		"extra": {SSSID: "S-3", Name: "x", Extra: map[string]json.RawMessage{
			"zeta": json.RawMessage(`1`), "alpha": json.RawMessage(`"a"`), "nil": nil, "empty": json.RawMessage{},
			"obj": json.RawMessage(`{"k": [1, 2]}`),
		}},
	} {
		t.Run(name, func(t *testing.T) {
			want := cloneSubject(s)
			e := newSubjEntry(s)
			got := e.subject()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			for k, v := range got.Extra {
				if cap(v) != len(v) {
					t.Errorf("value %q has room for %d more bytes", k, cap(v)-len(v))
				}
				if len(v) > 0 {
					v[0] = '#'
					if s.Extra[k][0] == '#' {
						t.Errorf("value %q shares memory with the given subject", k)
					}
					if again := e.subject().Extra[k]; again[0] == '#' {
						t.Errorf("value %q shares memory with the cache entry", k)
					}
				}
			}
			if s.Extra != nil {
				s.Extra["added"] = json.RawMessage(`1`)
				if _, ok := got.Extra["added"]; ok {
					t.Error("the map is the given subject's")
				}
			}
		})
	}
}
