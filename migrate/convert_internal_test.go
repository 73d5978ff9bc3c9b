package migrate

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/c3-pro/idm/idm"
)

func TestParseISO(t *testing.T) {
	utc := func(sec, nsec int) time.Time { return time.Date(2019, 3, 4, 10, 11, sec, nsec, time.UTC) }
	for _, c := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "2019-03-04T10:11:12.123456+00:00", want: utc(12, 123456000)},
		{in: "2019-03-04T10:11:12+00:00", want: utc(12, 0)},
		{in: "2019-03-04T11:11:12+01:00", want: utc(12, 0)},
		{in: "2019-03-04T10:11:12Z", want: utc(12, 0)},
		{in: "2019-03-04T10:11:12.5Z", want: utc(12, 500000000)},
		{in: "2019-03-04T10:11:12.123456+0000", want: utc(12, 123456000)},
		{in: "2019-03-04 10:11:12.123456+00:00", want: utc(12, 123456000)},
		{in: "2019-03-04 10:11:12-0100", want: time.Date(2019, 3, 4, 11, 11, 12, 0, time.UTC)},
		{in: "2019-03-04T10:11:12.123456", want: utc(12, 123456000)}, // naive: UTC
		{in: "2019-03-04 10:11:12", want: utc(12, 0)},
		{in: "2019-03-04", want: time.Date(2019, 3, 4, 0, 0, 0, 0, time.UTC)},
		{in: "yesterday", bad: true},
		{in: "04.03.2019", bad: true},
		{in: "", bad: true},
		{in: "2019-03-04T25:11:12Z", bad: true},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseISO(c.in)
			if c.bad {
				if err == nil {
					t.Fatalf("parseISO(%q) = %v, want an error", c.in, got)
				}
				return
			}
			if err != nil || !got.Equal(c.want) || got.Location() != time.UTC {
				t.Fatalf("parseISO(%q) = %v, %v; want %v in UTC", c.in, got, err, c.want)
			}
		})
	}
}

// doc builds a one-field document.
func doc(t *testing.T, key string, v any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(bson.D{{Key: key, Value: v}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTimeField(t *testing.T) {
	at := time.Date(2019, 3, 4, 10, 11, 12, 0, time.UTC)
	for _, c := range []struct {
		name   string
		v      any
		want   time.Time
		absent bool
		bad    bool
	}{
		{name: "ISO string", v: "2019-03-04T10:11:12+00:00", want: at},
		{name: "BSON date", v: bson.NewDateTimeFromTime(at.Add(250 * time.Millisecond)), want: at.Add(250 * time.Millisecond)},
		{name: "int32", v: int32(at.Unix()), want: at},
		{name: "int64", v: at.Unix(), want: at},
		{name: "double", v: float64(at.Unix()) + 0.5, want: at.Add(500 * time.Millisecond)},
		{name: "null", v: nil, absent: true},
		{name: "bad string", v: "soon", bad: true},
		{name: "bool", v: true, bad: true},
		{name: "NaN", v: math.NaN(), bad: true},
		{name: "milliseconds", v: at.UnixMilli(), bad: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok, err := timeField(doc(t, "k", c.v), "k")
			switch {
			case c.bad:
				if err == nil {
					t.Fatalf("got %v, %v; want an error", got, ok)
				}
			case c.absent:
				if ok || err != nil {
					t.Fatalf("got %v, %v, %v; want absent", got, ok, err)
				}
			case err != nil || !ok || !got.Equal(c.want):
				t.Fatalf("got %v, %v, %v; want %v", got, ok, err, c.want)
			}
		})
	}
	if _, ok, err := timeField(doc(t, "other", 1), "k"); ok || err != nil {
		t.Fatalf("missing field: %v, %v", ok, err)
	}
}

func TestToJSON(t *testing.T) {
	id := bson.ObjectID{0x5c, 0x7c, 0xf7, 0x20, 1, 2, 3, 4, 5, 6, 7, 8}
	for _, c := range []struct {
		name string
		v    any
		want string // "" for an error
	}{
		{"string", "a \"quoted\" <b>&</b> ünïcode", `"a \"quoted\" <b>&</b> ünïcode"`},
		{"int32", int32(-7), `-7`},
		{"int64", int64(1) << 60, `1152921504606846976`},
		{"double", 2.5, `2.5`},
		{"whole double", 3.0, `3`},
		{"large double", 1e300, `1e+300`},
		{"bool", false, `false`},
		{"null", nil, `null`},
		{"undefined", bson.Undefined{}, `null`},
		{"document", bson.D{{Key: "b", Value: 1}, {Key: "a", Value: bson.A{"x", bson.D{}}}}, `{"b":1,"a":["x",{}]}`},
		{"empty array", bson.A{}, `[]`},
		{"date", bson.NewDateTimeFromTime(time.Date(2019, 3, 4, 10, 0, 0, 0, time.UTC)), `"2019-03-04T10:00:00Z"`},
		{"ObjectId", id, `"5c7cf720010203040506070` + `8"`},
		{"binary", bson.Binary{Data: []byte("hi")}, `"aGk="`},
		{"symbol", bson.Symbol("sym"), `"sym"`},
		{"decimal", mustDecimal(t, "12.50"), `12.50`},
		{"NaN", math.NaN(), ""},
		{"infinity", math.Inf(1), ""},
		{"decimal NaN", mustDecimal(t, "NaN"), ""},
		{"regex", bson.Regex{Pattern: "^a"}, ""},
		{"nested regex", bson.D{{Key: "r", Value: bson.Regex{Pattern: "^a"}}}, ""},
		{"timestamp", bson.Timestamp{T: 1, I: 2}, ""},
		{"code", bson.JavaScript("f()"), ""},
		{"min key", bson.MinKey{}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := toJSON(doc(t, "k", c.v).Lookup("k"))
			if c.want == "" {
				if err == nil {
					t.Fatalf("toJSON = %s, want an error", got)
				}
				return
			}
			if err != nil || string(got) != c.want {
				t.Fatalf("toJSON = %s, %v; want %s", got, err, c.want)
			}
		})
	}
}

func mustDecimal(t *testing.T, s string) bson.Decimal128 {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHexID(t *testing.T) {
	id := bson.NewObjectID()
	for _, c := range []struct {
		name string
		v    any
		want string
		ok   bool
		bad  bool
	}{
		{name: "ObjectId", v: id, want: id.Hex(), ok: true},
		{name: "hex string", v: id.Hex(), want: id.Hex(), ok: true},
		{name: "upper-case hex string", v: strings.ToUpper(id.Hex()), want: id.Hex(), ok: true},
		{name: "null", v: nil},
		{name: "other string", v: "abc", bad: true},
		{name: "number", v: int32(5), bad: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok, err := hexID(doc(t, "k", c.v), "k")
			if (err != nil) != c.bad || ok != c.ok || got != c.want {
				t.Fatalf("hexID = %q, %v, %v; want %q, %v, error %v", got, ok, err, c.want, c.ok, c.bad)
			}
		})
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("ä", 40) // 80 bytes
	got := clip(long)
	if !strings.HasSuffix(got, "…") || len(got) > 64+len("…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Fatalf("clip = %q", got)
	}
	if clip("short") != "short" {
		t.Fatal("clip changed a short string")
	}
}

// noActors knows no users.
type noActors struct{}

func (noActors) usernameOf(string) (string, bool) { return "", false }
func (noActors) idOf(string) (string, bool)       { return "", false }

// Fields of impossible types make a document unfit to come over, with a
// reason naming the field.
func TestFieldTypes(t *testing.T) {
	id := bson.NewObjectID()
	hash := "$2b$12$umPqidKlkTVqMfzgV/ZosOWCiz2iOCUPYs0NxGoqQkkgUw9oBlNya"
	convert := map[string]func(bson.Raw) error{
		"user":    func(d bson.Raw) error { _, err := toUser(id, d); return err },
		"subject": func(d bson.Raw) error { _, _, err := toSubject(id, d); return err },
		"link":    func(d bson.Raw) error { _, _, err := toLink(id, d); return err },
		"audit":   func(d bson.Raw) error { _, _, err := toAudit(id, d, noActors{}); return err },
	}
	for _, c := range []struct {
		typ  string
		doc  bson.D
		want string // "" for success
	}{
		{"user", bson.D{{Key: "username", Value: "a@b.c"}, {Key: "password", Value: hash}}, ""},
		{"user", bson.D{{Key: "username", Value: "a@b.c"}}, ""}, // no password: kept, with a note
		{"user", bson.D{{Key: "username", Value: int32(1)}}, "field username is a 32-bit integer, not a string"},
		{"user", bson.D{{Key: "username", Value: "a@b.c"}, {Key: "password", Value: int32(1)}}, "field password"},
		{"user", bson.D{{Key: "username", Value: "a@b.c"}, {Key: "password", Value: hash}, {Key: "admin", Value: "yes"}}, "field admin"},
		{"subject", bson.D{{Key: "sssid", Value: "S"}}, ""},
		{"subject", bson.D{{Key: "sssid", Value: int32(5)}}, "field sssid"},
		{"subject", bson.D{{Key: "sssid", Value: "S"}, {Key: "name", Value: bson.A{"x"}}}, "field name"},
		{"subject", bson.D{{Key: "sssid", Value: "S"}, {Key: "bday", Value: int32(1980)}}, "field bday"},
		{"link", bson.D{{Key: "sub", Value: "S"}}, ""},
		{"link", bson.D{{Key: "sub", Value: "S"}, {Key: "exp", Value: 1.5}}, "field exp"},
		{"link", bson.D{{Key: "sub", Value: "S"}, {Key: "exp", Value: "tomorrow"}}, "field exp"},
		{"link", bson.D{{Key: "sub", Value: "S"}, {Key: "_jwt", Value: int32(1)}}, "field _jwt"},
		{"link", bson.D{{Key: "sub", Value: "S"}, {Key: "linked_to", Value: int32(1)}}, "field linked_to"},
		{"link", bson.D{{Key: "sub", Value: "S"}, {Key: "withdrawn_on", Value: true}}, "field withdrawn_on"},
		{"audit", bson.D{{Key: "document", Value: id}}, ""},
		{"audit", bson.D{{Key: "document", Value: "nope"}}, "field document"},
		{"audit", bson.D{{Key: "document", Value: id}, {Key: "action", Value: int32(1)}}, "field action"},
		{"audit", bson.D{{Key: "document", Value: id}, {Key: "actor", Value: true}}, "field actor"},
		{"audit", bson.D{{Key: "document", Value: id}, {Key: "actor_id", Value: "bob"}}, "field actor_id"},
	} {
		t.Run(c.typ+" "+c.want, func(t *testing.T) {
			raw, err := bson.Marshal(c.doc)
			if err != nil {
				t.Fatal(err)
			}
			err = convert[c.typ](raw)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestAuditTime(t *testing.T) {
	id := bson.NewObjectIDFromTimestamp(time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC))
	dt := time.Date(2019, 3, 4, 10, 11, 12, 0, time.UTC)
	epoch := time.Date(2019, 3, 5, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name   string
		fields bson.D
		want   time.Time
		note   string
	}{
		{"datetime", bson.D{{Key: "datetime", Value: "2019-03-04T10:11:12+00:00"}, {Key: "epoch", Value: int32(epoch.Unix())}}, dt, ""},
		{"epoch", bson.D{{Key: "epoch", Value: int32(epoch.Unix())}}, epoch, ""},
		{"bad datetime, epoch", bson.D{{Key: "datetime", Value: "soon"}, {Key: "epoch", Value: int32(epoch.Unix())}}, epoch, "used the epoch field"},
		{"neither", nil, id.Timestamp(), ""},
		{"bad datetime", bson.D{{Key: "datetime", Value: "soon"}}, id.Timestamp(), "used the ObjectId time"},
		{"bad epoch", bson.D{{Key: "epoch", Value: "soon"}}, id.Timestamp(), "used the ObjectId time"},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw, err := bson.Marshal(append(bson.D{{Key: "document", Value: id}}, c.fields...))
			if err != nil {
				t.Fatal(err)
			}
			e, notes, err := toAudit(id, raw, noActors{})
			if err != nil {
				t.Fatal(err)
			}
			if !e.Time.Equal(c.want) {
				t.Errorf("time %v, want %v", e.Time, c.want)
			}
			joined := strings.Join(notes, "\n")
			if (c.note == "") != (joined == "") || !strings.Contains(joined, c.note) {
				t.Errorf("notes %q, want one containing %q", notes, c.note)
			}
		})
	}
}

func TestAPIRemarks(t *testing.T) {
	big := json.RawMessage(`"` + strings.Repeat("x", idm.MaxExtraBytes) + `"`)
	for _, c := range []struct {
		name string
		s    idm.Subject
		want []string
	}{
		{"fine", idm.Subject{SSSID: "S", Name: "N", Extra: map[string]json.RawMessage{"ok-key_1": json.RawMessage(`1`)}}, nil},
		{"long sssid", idm.Subject{SSSID: strings.Repeat("s", idm.MaxSSSIDLen+1)}, []string{"the sssid is longer"}},
		{"long name", idm.Subject{SSSID: "S", Name: strings.Repeat("n", idm.MaxNameLen+1)}, []string{"the name is longer"}},
		{"field names", idm.Subject{SSSID: "S", Extra: map[string]json.RawMessage{"_x": nil, "a.b": nil, "": nil}},
			[]string{`field ""`, `field "_x"`, `field "a.b"`}},
		{"too large", idm.Subject{SSSID: "S", Extra: map[string]json.RawMessage{"big": big}}, []string{"the additional fields take"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := apiRemarks(c.s)
			if len(got) != len(c.want) {
				t.Fatalf("remarks %q, want %d", got, len(c.want))
			}
			for i := range got {
				if !strings.Contains(got[i], c.want[i]) {
					t.Errorf("remark %q, want one containing %q", got[i], c.want[i])
				}
			}
		})
	}
}
