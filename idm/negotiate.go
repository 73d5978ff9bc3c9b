package idm

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// IsJSONBody reports whether r's body is declared as JSON: its
// Content-Type is application/json or another "+json" type.
func IsJSONBody(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// WantsJSON reports whether to answer r, a request to an endpoint that
// serves both HTML pages and JSON, with JSON: its body is JSON (see
// [IsJSONBody]), or its Accept header prefers application/json to
// text/html, by quality and then by specificity (so "application/json,
// text/plain, */*", as axios sends, means JSON, and "*/*" alone means HTML).
func WantsJSON(r *http.Request) bool {
	if IsJSONBody(r) {
		return true
	}
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return false
	}
	// Higher quality wins; at equal quality, the more specific range (so
	// "application/json, text/plain, */*", as axios sends, means JSON).
	jq, js := acceptQ(accept, "application", "json")
	hq, hs := acceptQ(accept, "text", "html")
	return jq > hq || jq == hq && jq > 0 && js > hs
}

// acceptQ returns the quality the Accept header values give to type/sub and
// the specificity of the range it came from: that of the most specific
// matching media range (2 exact, 1 type/*, 0 */*); 0 and -1 when none
// matches.
func acceptQ(values []string, typ, sub string) (q float64, specificity int) {
	best, bestSpec := 0.0, -1
	for _, v := range values {
		for _, rng := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(rng))
			if err != nil {
				continue
			}
			t, s, _ := strings.Cut(mt, "/")
			spec := -1
			switch {
			case t == typ && s == sub:
				spec = 2
			case t == typ && s == "*":
				spec = 1
			case t == "*" && s == "*":
				spec = 0
			}
			if spec < bestSpec || spec < 0 {
				continue
			}
			q := 1.0
			if qs, ok := params["q"]; ok {
				f, err := strconv.ParseFloat(qs, 64)
				if err != nil || f < 0 || f > 1 {
					continue
				}
				q = f
			}
			if spec > bestSpec || q > best {
				best, bestSpec = q, spec
			}
		}
	}
	return best, bestSpec
}
