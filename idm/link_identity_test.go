package idm_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
)

// TestNewLinkCarriesIssuerAudienceAndAlgorithmFromCreation: POST
// /subject/{sssid}/links answers iss, aud and algorithm at once (the
// frontend reads them), the record keeps them, and a later change of the
// service's link issuer does not change the link or the tokens minted for it.
func TestNewLinkCarriesIssuerAudienceAndAlgorithmFromCreation(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		store := newStore(t)
		env := newTestEnvOn(t, store)
		env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
		var created struct{ Data map[string]any }
		env.must(t, http.StatusCreated, "POST", "/subject/S-1/links", "").decode(t, &created)
		want := map[string]string{"iss": linkIssuer, "aud": linkIssuer, "algorithm": "HS256"}
		for k, v := range want {
			if created.Data[k] != v {
				t.Errorf("new link's %s = %v, want %q (%v)", k, created.Data[k], v, created.Data)
			}
		}
		jti, _ := created.Data["_id"].(string)

		// The service's link issuer changes (say, to the app build's):
		// the existing link and its tokens keep theirs.
		moved := newTestEnvOn(t, store, func(c *envConfig) {
			c.LinkTokens = &hmacLinkTokens{secret: env.tokens.secret, issuer: "https://idm.c3-pro.io/", audience: "https://idm.example"}
		})
		token := moved.mint(t, jti)
		claims, err := moved.tokens.VerifyLinkToken(t.Context(), token)
		if err != nil {
			t.Fatal(err)
		}
		if claims.Issuer != linkIssuer || claims.Audience != linkIssuer {
			t.Errorf("token of an existing link minted with iss %q aud %q, want its record's %q", claims.Issuer, claims.Audience, linkIssuer)
		}
		var got struct{ Data map[string]any }
		moved.must(t, http.StatusOK, "GET", "/link/"+jti, "").decode(t, &got)
		for k, v := range want {
			if got.Data[k] != v {
				t.Errorf("after minting, %s = %v, want %q", k, got.Data[k], v)
			}
		}
		if r := moved.establish(t, token, "P-1"); r.status != http.StatusNoContent {
			t.Errorf("establish: %d %s", r.status, r.body)
		}
		var fresh struct{ Data map[string]any }
		moved.must(t, http.StatusCreated, "POST", "/subject/S-1/links", "").decode(t, &fresh)
		if fresh.Data["iss"] != "https://idm.c3-pro.io/" || fresh.Data["aud"] != "https://idm.example" {
			t.Errorf("a link created after the change: %v", fresh.Data)
		}
	})
}

// TestEstablishAcceptsOnlyTheLinksOwnToken: the link secret ships in every
// app build, so a token that verifies but is not the one minted for the
// link (forged with the secret, or naming another issuer or audience than
// the link's) is 403 Forbidden.
func TestEstablishAcceptsOnlyTheLinksOwnToken(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		env := newTestEnvOn(t, newStore(t))
		env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
		jti := env.createLink(t, "S-1")
		minted := env.mint(t, jti)
		exp := env.clock.Now().Add(time.Hour)
		forge := func(c idm.LinkClaims) string {
			c.ID, c.Subject, c.Birthdate, c.Expires = jti, "Alice", "1980-05-17", exp
			tok, _, err := env.tokens.IssueLinkToken(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		for name, tok := range map[string]string{
			"same claims but another exp": forge(idm.LinkClaims{}),
			"another issuer":              forge(idm.LinkClaims{Issuer: "https://evil.example/"}),
			"another audience":            forge(idm.LinkClaims{Audience: "https://evil.example"}),
		} {
			r := env.establish(t, tok, "P-1")
			if r.status != http.StatusForbidden || r.message() != "Forbidden" {
				t.Errorf("%s: %d %s, want 403 Forbidden", name, r.status, r.body)
			}
		}
		if r := env.establish(t, minted, "P-1"); r.status != http.StatusNoContent {
			t.Errorf("the minted token: %d %s", r.status, r.body)
		}
	})
}

// TestMigratedLinkEstablishesWhenTheOriginalSecretIsTheLinkSecret: an
// operator who keeps the original deployment's secret as the link secret
// (so that app builds in the field accept new links) still gets migrated
// links established by their stored token hash, whatever jti the original
// put into the token; another token signed with that secret does not.
func TestMigratedLinkEstablishesWhenTheOriginalSecretIsTheLinkSecret(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		env := newTestEnvOn(t, newStore(t))
		ctx := t.Context()
		env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
		now := env.clock.Now()
		for name, jti := range map[string]func(id string) string{
			"jti is the link's ID": func(id string) string { return id },
			"jti is another ID":    func(string) string { return idm.NewID() },
		} {
			l := idm.Link{ID: idm.NewID(), SSSID: "S-1", Issuer: "https://old.example/", Audience: "https://old.example/",
				Algorithm: "HS256", Created: idm.Timestamp(now), Changed: idm.Timestamp(now), Exp: now.Add(time.Hour).Unix()}
			// Signed with the same secret as the service's link tokens.
			tok, _, err := env.tokens.IssueLinkToken(ctx, idm.LinkClaims{ID: jti(l.ID), Issuer: l.Issuer, Audience: l.Audience, Expires: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			forged, _, err := env.tokens.IssueLinkToken(ctx, idm.LinkClaims{ID: jti(l.ID), Issuer: l.Issuer, Audience: l.Audience, Expires: now.Add(2 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			l.JWTHash = sha256Hex(tok)
			if err := env.store.CreateLink(ctx, l); err != nil {
				t.Fatal(err)
			}
			if r := env.establish(t, forged, "P-"+name); r.status != http.StatusForbidden {
				t.Errorf("%s: another token of the secret: %d %s", name, r.status, r.body)
			}
			if r := env.establish(t, tok, "P-"+name); r.status != http.StatusNoContent {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
	})
}
