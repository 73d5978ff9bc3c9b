package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// testKeys holds one private key of each supported kind, made once per test
// binary run by the helpers below.
type testKeys struct {
	ed  ed25519.PrivateKey
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return testKeys{ed: ed, rsa: rk, ec: ec}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t testing.TB, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return pemBlock("PRIVATE KEY", der)
}

func TestNewHMACKey(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"random 48 bytes", testSecret, true},
		{"31 bytes", testSecret[:31], false},
		{"empty", "", false},
		{"super-duper-secret repeated to 36 bytes", strings.Repeat("super-duper-secret", 2), false},
		{"changeme repeated", strings.Repeat("changeme", 4), false},
		{"secret repeated, upper case", strings.Repeat("SECRET", 6), false},
		{"one byte repeated", strings.Repeat("a", 64), false},
		{"few distinct bytes", strings.Repeat("abcd", 10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := auth.NewHMACKey([]byte(tt.secret))
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, auth.HS256, k.Algorithm())
			assert.True(t, k.CanSign())
			_, public := k.Public()
			assert.False(t, public, "an HMAC key has no public part")
			again, err := auth.NewHMACKey([]byte(tt.secret))
			require.NoError(t, err)
			assert.Equal(t, k.KID(), again.KID(), "the kid is derived from the secret")
			assert.NotContains(t, k.KID(), tt.secret[:8])
		})
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	keys := newTestKeys(t)
	sec1, err := x509.MarshalECPrivateKey(keys.ec)
	require.NoError(t, err)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	tests := []struct {
		name string
		pem  []byte
		alg  string // "" for refused
	}{
		{"Ed25519 PKCS#8", pkcs8(t, keys.ed), auth.EdDSA},
		{"RSA PKCS#8", pkcs8(t, keys.rsa), auth.RS256},
		{"RSA PKCS#1", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(keys.rsa)), auth.RS256},
		{"EC PKCS#8", pkcs8(t, keys.ec), auth.ES256},
		{"EC SEC1 after EC PARAMETERS", append(pemBlock("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), pemBlock("EC PRIVATE KEY", sec1)...), auth.ES256},
		{"RSA 1024 bits", pkcs8(t, small), ""},
		{"EC P-384", pkcs8(t, p384), ""},
		{"no PEM", []byte("not a key"), ""},
		{"garbage DER", pemBlock("PRIVATE KEY", []byte{1, 2, 3}), ""},
		{"encrypted", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := auth.ParsePrivateKeyPEM(tt.pem)
			if tt.alg == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.alg, k.Algorithm())
			assert.True(t, k.CanSign())
			jwk, ok := k.Public()
			require.True(t, ok)
			assert.Equal(t, k.KID(), jwk.KID)
			assert.Equal(t, jwk.Thumbprint(), k.KID(), "the kid is the RFC 7638 thumbprint")
			assert.Equal(t, tt.alg, jwk.Alg)
		})
	}
	t.Run("same key in other encodings has the same kid", func(t *testing.T) {
		a, err := auth.ParsePrivateKeyPEM(pkcs8(t, keys.rsa))
		require.NoError(t, err)
		b, err := auth.ParsePrivateKeyPEM(pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(keys.rsa)))
		require.NoError(t, err)
		assert.Equal(t, a.KID(), b.KID())
		der, err := x509.MarshalPKIXPublicKey(&keys.rsa.PublicKey)
		require.NoError(t, err)
		pub, err := auth.ParsePublicKeyPEM(pemBlock("PUBLIC KEY", der))
		require.NoError(t, err)
		assert.Equal(t, a.KID(), pub.KID())
		assert.False(t, pub.CanSign())
		_, err = auth.NewKeySet(pub)
		assert.Error(t, err, "a public-only key cannot be the signing key")
	})
}

// TestJWKThumbprint checks the thumbprint against the example of RFC 7638
// section 3.1.
func TestJWKThumbprint(t *testing.T) {
	jwk := auth.JWK{
		Kty: "RSA", E: "AQAB",
		N: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
	}
	assert.Equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", jwk.Thumbprint())
}

func TestKeySetAndJWKS(t *testing.T) {
	keys := newTestKeys(t)
	ed, err := auth.ParsePrivateKeyPEM(pkcs8(t, keys.ed))
	require.NoError(t, err)
	ec, err := auth.ParsePrivateKeyPEM(pkcs8(t, keys.ec))
	require.NoError(t, err)
	hs, err := auth.NewHMACKey([]byte(testSecret))
	require.NoError(t, err)

	ks, err := auth.NewKeySet(ed, ec, hs, ed)
	require.NoError(t, err)
	assert.Equal(t, ed, ks.Signing())
	assert.Len(t, ks.Keys(), 3, "a key given twice counts once")
	assert.ElementsMatch(t, []string{auth.EdDSA, auth.ES256, auth.HS256}, ks.Algorithms())
	got, ok := ks.Lookup(ec.KID())
	require.True(t, ok)
	assert.Equal(t, ec, got)
	_, ok = ks.Lookup("nope")
	assert.False(t, ok)

	e := newEnv(t, func(c *auth.Config) { c.Keys = ks; c.LinkKeys = linkKeys(t, appSecret) })
	r := e.do(http.MethodGet, "/.well-known/jwks.json", "")
	require.Equal(t, http.StatusOK, r.status)
	var set auth.JWKSet
	require.NoError(t, json.Unmarshal([]byte(r.body), &set))
	require.Len(t, set.Keys, 2, "only the asymmetric keys are published")
	assert.Equal(t, ed.KID(), set.Keys[0].KID)
	assert.Equal(t, "OKP", set.Keys[0].Kty)
	assert.Equal(t, ec.KID(), set.Keys[1].KID)
	assert.Equal(t, "EC", set.Keys[1].Kty)
	assert.NotContains(t, r.body, `"d"`, "no private parts")

	hsOnly := newEnv(t)
	r = hsOnly.do(http.MethodGet, "/.well-known/jwks.json", "")
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"keys":[]}`, r.body)
}

func TestLoadOrCreateKeys(t *testing.T) {
	store := memstore.New()
	ctx := t.Context()
	// Several instances start at once on one store: one creates the key,
	// all end up with it.
	const n = 8
	sets := make([]*auth.KeySet, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { sets[i], errs[i] = auth.LoadOrCreateKeys(ctx, store, t0) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, sets[0].Signing().KID(), sets[i].Signing().KID(), "instance %d", i)
	}
	stored, err := store.FindSigningKey(ctx, auth.DefaultKeyName)
	require.NoError(t, err)
	assert.Equal(t, auth.HS256, stored.Alg)
	assert.Len(t, stored.Secret, 32)
	assert.Equal(t, sets[0].Signing().KID(), stored.KID)

	// A restart reads the same key.
	again, err := auth.LoadOrCreateKeys(ctx, store, t0)
	require.NoError(t, err)
	assert.Equal(t, stored.KID, again.Signing().KID())

	t.Run("stored asymmetric key", func(t *testing.T) {
		s := memstore.New()
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		require.NoError(t, err)
		require.NoError(t, s.CreateSigningKey(ctx, idm.SigningKey{Name: auth.DefaultKeyName, Alg: auth.EdDSA, Secret: der, Created: t0}))
		ks, err := auth.LoadOrCreateKeys(ctx, s, t0)
		require.NoError(t, err)
		assert.Equal(t, auth.EdDSA, ks.Signing().Algorithm())
	})
	t.Run("store failure", func(t *testing.T) {
		_, err := auth.LoadOrCreateKeys(ctx, failingKeyStore{}, t0)
		require.ErrorIs(t, err, idm.ErrUnavailable)
	})
}

// failingKeyStore is a KeyStore whose database is down.
type failingKeyStore struct{}

func (failingKeyStore) CreateSigningKey(_ context.Context, _ idm.SigningKey) error {
	return errors.New("down")
}

func (failingKeyStore) FindSigningKey(_ context.Context, _ string) (idm.SigningKey, error) {
	return idm.SigningKey{}, fmt.Errorf("db: %w", idm.ErrUnavailable)
}
