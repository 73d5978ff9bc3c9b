package main

import (
	"net/http"

	"github.com/c3-pro/idm/idm"
)

// importPath is the route whose body may be larger than others'.
const importPath = "/subject/import"

// bodyLimit returns the limit of a request's body: importMax (0:
// idm.DefaultMaxImportBytes) for POST /subject/import, which reads its
// body as it arrives, and idm.DefaultMaxBodyBytes for every other request.
func bodyLimit(importMax int64) func(*http.Request) int64 {
	if importMax <= 0 {
		importMax = idm.DefaultMaxImportBytes
	}
	return func(r *http.Request) int64 {
		if r.Method == http.MethodPost && r.URL.Path == importPath {
			return importMax
		}
		return idm.DefaultMaxBodyBytes
	}
}

// limitBodies is http.MaxBytesHandler with a limit per request: a body
// read past limit(r) fails with an *http.MaxBytesError.
func limitBodies(next http.Handler, limit func(*http.Request) int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := *r
		r2.Body = http.MaxBytesReader(w, r.Body, limit(r))
		next.ServeHTTP(w, &r2)
	})
}
