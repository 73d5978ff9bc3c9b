package auth

import (
	"fmt"
	"testing"
)

// TestVerifiedCacheIsBounded: however many tokens are verified, at most two
// generations are kept, and a token in use survives the turnover.
func TestVerifiedCacheIsBounded(t *testing.T) {
	const max = 8
	c := newVerifiedCache(max)
	hot := &verifiedToken{claims: StaffClaims{UserID: "hot"}}
	c.put("hot", hot)
	for i := range 10 * max {
		c.put(fmt.Sprint("token-", i), &verifiedToken{})
		if got := c.len(); got > 2*max {
			t.Fatalf("after %d tokens the cache holds %d, more than %d", i+1, got, 2*max)
		}
		if v, ok := c.get("hot"); !ok || v != hot {
			t.Fatalf("after %d other tokens the token in use is gone", i+1)
		}
	}
	c.forget("hot")
	if _, ok := c.get("hot"); ok {
		t.Fatal("a forgotten token is still there")
	}
}
