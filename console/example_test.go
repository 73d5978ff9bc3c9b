package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/c3-pro/idm/console"
)

// A browser asking for / is sent to the console; any other client gets the
// handler's own answer.
func ExampleRedirectBrowsers() {
	h := console.RedirectBrowsers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"ready"}`)
	}))
	for _, accept := range []string{"text/html,application/xhtml+xml", "application/json"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d %q %q\n", w.Code, w.Header().Get("Location"), w.Body.String())
	}
	// Output:
	// 303 "console/" ""
	// 200 "" "{\"status\":\"ready\"}"
}
