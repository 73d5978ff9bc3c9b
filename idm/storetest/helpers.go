package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// t0 is the suite's reference time: millisecond-aligned, in UTC.
var t0 = time.Date(2024, time.May, 1, 12, 0, 0, 0, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// messy returns t0 plus d as a time in a zone east of UTC with a
// sub-millisecond part, to check that stores normalise what they keep.
func messy(d time.Duration) time.Time {
	zone := time.FixedZone("UTC+05:30", 5*3600+30*60)
	return t0.Add(d).Add(123456 * time.Nanosecond).In(zone)
}

// updateUser updates u and then raises u.Rev, as the store did.
func updateUser(t *testing.T, s idm.Store, u *idm.User) {
	t.Helper()
	require.NoError(t, s.UpdateUser(t.Context(), *u), "UpdateUser %q", u.Username)
	u.Rev++
}

// updateSubject updates sub and then raises sub.Rev, as the store did.
func updateSubject(t *testing.T, s idm.Store, sub *idm.Subject) {
	t.Helper()
	require.NoError(t, s.UpdateSubject(t.Context(), *sub), "UpdateSubject %q", sub.SSSID)
	sub.Rev++
}

// updateLink updates l and then raises l.Rev, as the store did.
func updateLink(t *testing.T, s idm.Store, l *idm.Link) {
	t.Helper()
	require.NoError(t, s.UpdateLink(t.Context(), *l), "UpdateLink %s", l.ID)
	l.Rev++
}

// concurrently runs f(0) ... f(n-1) in n goroutines that are released
// together and returns their errors.
func concurrently(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// requireOneWinner checks that exactly one of errs is nil and all others
// wrap loser, and returns the index of the winner.
func requireOneWinner(t *testing.T, errs []error, loser error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			require.Equal(t, -1, winner, "more than one caller succeeded: %d and %d", winner, i)
			winner = i
		case !assert.ErrorIs(t, err, loser, "caller %d", i):
			t.FailNow()
		}
	}
	require.NotEqual(t, -1, winner, "no caller succeeded")
	return winner
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// assertSame checks that got is what a store must return for want: every
// time equals idm.Timestamp of want's and is in UTC, JSON values
// (json.RawMessage, also as map values) are equivalent, empty and nil
// slices and maps are the same, and everything else is equal.
func assertSame(t *testing.T, want, got any, msgAndArgs ...any) bool {
	t.Helper()
	var diffs []string
	compareValues(&diffs, "", reflect.ValueOf(want), reflect.ValueOf(got))
	if len(diffs) == 0 {
		return true
	}
	msg := fmt.Sprintf("%T differs:", want)
	for _, d := range diffs {
		msg += "\n\t" + d
	}
	return assert.Fail(t, msg, msgAndArgs...)
}

func compareValues(diffs *[]string, path string, w, g reflect.Value) {
	if w.Type() != g.Type() {
		*diffs = append(*diffs, fmt.Sprintf("%s: type %s, want %s", path, g.Type(), w.Type()))
		return
	}
	switch {
	case w.Type() == timeType:
		wt := idm.Timestamp(w.Interface().(time.Time))
		gt := g.Interface().(time.Time)
		if !gt.Equal(wt) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %v, want %v", path, gt, wt))
		} else if gt.Location() != time.UTC {
			*diffs = append(*diffs, fmt.Sprintf("%s: location %v, want UTC", path, gt.Location()))
		}
	case w.Type() == rawType:
		if d := jsonDiff(w.Bytes(), g.Bytes()); d != "" {
			*diffs = append(*diffs, path+": "+d)
		}
	case w.Kind() == reflect.Map:
		if w.Len() != g.Len() {
			*diffs = append(*diffs, fmt.Sprintf("%s: %d entries %v, want %d entries %v", path, g.Len(), mapKeys(g), w.Len(), mapKeys(w)))
			return
		}
		for _, k := range w.MapKeys() {
			gv := g.MapIndex(k)
			if !gv.IsValid() {
				*diffs = append(*diffs, fmt.Sprintf("%s[%v]: missing", path, k))
				continue
			}
			compareValues(diffs, fmt.Sprintf("%s[%v]", path, k), w.MapIndex(k), gv)
		}
	case w.Kind() == reflect.Slice && w.Type().Elem().Kind() == reflect.Uint8:
		if !bytes.Equal(w.Bytes(), g.Bytes()) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %x, want %x", path, g.Bytes(), w.Bytes()))
		}
	case w.Kind() == reflect.Slice:
		if w.Len() != g.Len() {
			*diffs = append(*diffs, fmt.Sprintf("%s: length %d, want %d", path, g.Len(), w.Len()))
			return
		}
		for i := range w.Len() {
			compareValues(diffs, fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i))
		}
	case w.Kind() == reflect.Struct:
		for i := range w.NumField() {
			compareValues(diffs, path+"."+w.Type().Field(i).Name, w.Field(i), g.Field(i))
		}
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %#v, want %#v", path, g.Interface(), w.Interface()))
		}
	}
}

func mapKeys(m reflect.Value) []string {
	keys := make([]string, 0, m.Len())
	for _, k := range m.MapKeys() {
		keys = append(keys, fmt.Sprint(k.Interface()))
	}
	slices.Sort(keys)
	return keys
}

// jsonDiff says how got differs from want as JSON; "" when they are
// equivalent. An empty want needs an empty got.
func jsonDiff(want, got []byte) string {
	if len(want) == 0 || len(got) == 0 {
		if len(want) == len(got) {
			return ""
		}
		return fmt.Sprintf("JSON %q, want %q", got, want)
	}
	var wv, gv any
	if err := json.Unmarshal(want, &wv); err != nil {
		return fmt.Sprintf("bad JSON in test data %q: %v", want, err)
	}
	if err := json.Unmarshal(got, &gv); err != nil {
		return fmt.Sprintf("invalid JSON %q: %v", got, err)
	}
	if !reflect.DeepEqual(wv, gv) {
		return fmt.Sprintf("JSON %s, want %s", got, want)
	}
	return ""
}
