package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/c3-pro/idm/idm"
)

// Signing algorithms a [Key] may have.
const (
	HS256 = "HS256"
	EdDSA = "EdDSA"
	RS256 = "RS256"
	ES256 = "ES256"
)

// MinSecretBytes is the shortest HMAC secret [NewHMACKey] accepts.
const MinSecretBytes = 32

// DefaultKeyName is the name under which [LoadOrCreateKeys] keeps the
// generated key in the store.
const DefaultKeyName = "default"

// minRSABits is the smallest RSA modulus a key may have.
const minRSABits = 2048

// knownDefaultSecrets are secrets from sample configurations, tutorials and
// the original service; none may sign tokens, nor may a repetition of one.
func knownDefaultSecrets() []string {
	return []string{
		"super-duper-secret", "secret", "changeme", "change-me", "change_me", "changeit",
		"password", "default", "your-256-bit-secret", "your-secret-key", "secretkey",
		"secret-key", "secret_key", "mysecret", "my-secret", "jwt-secret", "jwtsecret",
		"jwt_secret", "supersecret", "super-secret", "s3cr3t", "test", "example",
		"idm-secret", "idm_secret", "c3pro", "c3-pro", "0123456789", "1234567890",
	}
}

// Key is a key that signs or verifies tokens, with its JWT key ID and
// algorithm. An HMAC key (HS256) both signs and verifies; an asymmetric key
// (EdDSA, RS256, ES256) signs when it holds the private key and verifies with
// its public key. A Key is immutable.
type Key struct {
	kid     string
	alg     string
	secret  []byte        // HS256
	private crypto.Signer // nil for a public-only key
	public  crypto.PublicKey
	jwk     *JWK // nil for HS256
}

// KID returns the key ID, derived from the key material so that it stays the
// same across restarts and instances.
func (k *Key) KID() string { return k.kid }

// Algorithm returns the JWS algorithm of the key: "HS256", "EdDSA", "RS256"
// or "ES256".
func (k *Key) Algorithm() string { return k.alg }

// CanSign reports whether the key can sign tokens.
func (k *Key) CanSign() bool { return k.secret != nil || k.private != nil }

// Public returns the JWK of the key's public part, or false for an HMAC key.
func (k *Key) Public() (JWK, bool) {
	if k.jwk == nil {
		return JWK{}, false
	}
	return *k.jwk, true
}

// signingMethod returns the jwt signing method of the key.
func (k *Key) signingMethod() jwt.SigningMethod {
	switch k.alg {
	case HS256:
		return jwt.SigningMethodHS256
	case EdDSA:
		return jwt.SigningMethodEdDSA
	case RS256:
		return jwt.SigningMethodRS256
	default:
		return jwt.SigningMethodES256
	}
}

// signingKey returns what jwt needs to sign with the key.
func (k *Key) signingKey() any {
	if k.secret != nil {
		return k.secret
	}
	return k.private
}

// verificationKey returns what jwt needs to verify with the key; its Go type
// is fixed by the algorithm, so an HMAC secret can never verify an RS256
// signature nor the reverse.
func (k *Key) verificationKey() any {
	if k.secret != nil {
		return k.secret
	}
	return k.public
}

// NewHMACKey returns an HS256 key that signs with exactly the bytes of
// secret. It refuses a secret shorter than [MinSecretBytes] (32), a
// well-known default (such as "super-duper-secret", "secret" or
// "changeme", also repeated to reach the length) and a secret of fewer than
// 8 distinct bytes.
func NewHMACKey(secret []byte) (*Key, error) {
	if err := checkSecretStrength(secret); err != nil {
		return nil, err
	}
	return hmacKey(secret), nil
}

// checkSecretStrength says why secret is too weak to sign staff tokens, or
// returns nil: shorter than [MinSecretBytes], a well-known default (also
// repeated), or fewer than 8 distinct bytes.
func checkSecretStrength(secret []byte) error {
	if len(secret) < MinSecretBytes {
		return fmt.Errorf("auth: the HMAC secret has %d bytes; at least %d are required", len(secret), MinSecretBytes)
	}
	if isKnownDefault(secret) {
		return errors.New("auth: the HMAC secret is a well-known default; generate a random one (e.g. openssl rand -base64 48)")
	}
	distinct := map[byte]bool{}
	for _, b := range secret {
		distinct[b] = true
	}
	if len(distinct) < 8 {
		return errors.New("auth: the HMAC secret has too little variety; generate a random one (e.g. openssl rand -base64 48)")
	}
	return nil
}

// LinkKey is the HS256 key of enrolment-link tokens. The deployed C3-PRO
// app verifies a scanned link JWT itself with a secret compiled into the app
// build (the published build has "super-duper-secret"), so the link secret
// is whatever the app build holds: it may be short or well known. A LinkKey
// signs and verifies link tokens only; it never verifies a staff token,
// whatever its strength (see [Config.LinkKeys]).
type LinkKey struct {
	key  *Key
	weak error // why the secret would be too weak for staff tokens; nil if it is not
}

// NewLinkKey returns the link key for secret. Any non-empty secret is
// accepted; [LinkKey.Weak] reports one that [NewHMACKey] would refuse.
func NewLinkKey(secret []byte) (*LinkKey, error) {
	if len(secret) == 0 {
		return nil, errors.New("auth: the link secret is empty")
	}
	return &LinkKey{key: hmacKey(secret), weak: checkSecretStrength(secret)}, nil
}

// Weak reports whether the secret is too weak to protect anything on its
// own (shorter than 32 bytes, a well-known default, little variety), and
// why. A weak link secret is expected when it comes from a published app
// build; idmd then says so at start and in GET /status.
func (k *LinkKey) Weak() (bool, string) {
	if k.weak == nil {
		return false, ""
	}
	return true, strings.TrimPrefix(k.weak.Error(), "auth: ")
}

// KID returns the key ID that link tokens signed with the key carry.
func (k *LinkKey) KID() string { return k.key.kid }

// hmacKey returns an HS256 key for a copy of secret. Its key ID is the first
// 16 bytes of a domain-separated SHA-256 of the secret, base64url-encoded: it
// identifies the key without revealing anything that a token signed with it
// does not already.
func hmacKey(secret []byte) *Key {
	s := bytes.Clone(secret)
	sum := sha256.Sum256(append([]byte("idm HS256 key id\x00"), s...))
	return &Key{kid: b64(sum[:16]), alg: HS256, secret: s}
}

// isKnownDefault reports whether secret is, ignoring letter case and
// surrounding space, a known default or a repetition of one.
func isKnownDefault(secret []byte) bool {
	s := strings.ToLower(strings.TrimSpace(string(secret)))
	for _, d := range knownDefaultSecrets() {
		if s == d {
			return true
		}
		if len(s)%len(d) == 0 && strings.Repeat(d, len(s)/len(d)) == s {
			return true
		}
	}
	return false
}

// ParsePrivateKeyPEM returns the signing key in PEM data: PKCS#8 ("PRIVATE
// KEY": Ed25519, RSA or ECDSA P-256), PKCS#1 ("RSA PRIVATE KEY") or SEC1
// ("EC PRIVATE KEY"). Other PEM blocks (such as "EC PARAMETERS") are skipped.
// RSA keys need at least 2048 bits; EC keys must be on P-256. The key's
// algorithm is EdDSA, RS256 or ES256.
func ParsePrivateKeyPEM(data []byte) (*Key, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("auth: no private key found in the PEM data")
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted {
			return nil, errors.New("auth: encrypted PEM private keys are not supported")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("auth: encrypted PEM private keys are not supported")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("auth: parsing the %s PEM block: %w", block.Type, err)
		}
		return newPrivateKey(key)
	}
}

// ParsePublicKeyPEM returns a verify-only key from a PEM "PUBLIC KEY"
// (PKIX) block: Ed25519, RSA (at least 2048 bits) or ECDSA P-256. Such a key
// lets the service accept tokens signed elsewhere (for instance by a
// previous key whose private part is gone) but cannot sign.
func ParsePublicKeyPEM(data []byte) (*Key, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("auth: no public key found in the PEM data")
		}
		if block.Type != "PUBLIC KEY" {
			continue
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: parsing the PUBLIC KEY PEM block: %w", err)
		}
		return newPublicKey(pub, nil)
	}
}

// newPrivateKey wraps a parsed private key.
func newPrivateKey(key any) (*Key, error) {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return newPublicKey(k.Public(), k)
	case *rsa.PrivateKey:
		return newPublicKey(&k.PublicKey, k)
	case *ecdsa.PrivateKey:
		return newPublicKey(&k.PublicKey, k)
	default:
		return nil, fmt.Errorf("auth: unsupported private key type %T (want Ed25519, RSA or ECDSA P-256)", key)
	}
}

// newPublicKey builds a Key for pub, signing with priv when it is not nil.
func newPublicKey(pub crypto.PublicKey, priv crypto.Signer) (*Key, error) {
	k := &Key{public: pub, private: priv}
	var jwk JWK
	switch p := pub.(type) {
	case ed25519.PublicKey:
		k.alg = EdDSA
		jwk = JWK{Kty: "OKP", Crv: "Ed25519", X: b64(p)}
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("auth: the RSA key has %d bits; at least %d are required", p.N.BitLen(), minRSABits)
		}
		k.alg = RS256
		jwk = JWK{Kty: "RSA", N: b64(p.N.Bytes()), E: b64(big.NewInt(int64(p.E)).Bytes())}
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("auth: the EC key is on %s; only P-256 (ES256) is supported", p.Curve.Params().Name)
		}
		raw, err := p.Bytes() // 0x04 || X || Y
		if err != nil {
			return nil, fmt.Errorf("auth: encoding the EC public key: %w", err)
		}
		k.alg = ES256
		jwk = JWK{Kty: "EC", Crv: "P-256", X: b64(raw[1:33]), Y: b64(raw[33:65])}
	default:
		return nil, fmt.Errorf("auth: unsupported public key type %T (want Ed25519, RSA or ECDSA P-256)", pub)
	}
	k.kid = jwk.Thumbprint()
	jwk.KID, jwk.Alg, jwk.Use = k.kid, k.alg, "sig"
	k.jwk = &jwk
	return k, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWK is the JSON Web Key (RFC 7517) of a public verification key.
type JWK struct {
	Kty string `json:"kty"`
	KID string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of the key, base64url
// without padding: the hash of its required members in lexicographic order.
func (j JWK) Thumbprint() string {
	var m any
	switch j.Kty {
	case "EC":
		m = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{j.Crv, j.Kty, j.X, j.Y}
	case "RSA":
		m = struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{j.E, j.Kty, j.N}
	default:
		m = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{j.Crv, j.Kty, j.X}
	}
	b, _ := json.Marshal(m) // strings of the base64url alphabet never fail
	sum := sha256.Sum256(b)
	return b64(sum[:])
}

// JWKSet is the JSON Web Key Set that GET /.well-known/jwks.json serves.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// KeySet holds the keys the service signs and verifies tokens with: one
// signing key and any number of verify-only keys (for instance the previous
// signing key, so that tokens it signed stay valid until they expire). Keys
// are found by their key ID. A KeySet is immutable.
type KeySet struct {
	signing *Key
	byKID   map[string]*Key
	keys    []*Key
	algs    []string
}

// NewKeySet returns a KeySet that signs with signing and also verifies with
// the others. The signing key must be able to sign; key IDs must be unique
// (a key given twice counts once).
func NewKeySet(signing *Key, others ...*Key) (*KeySet, error) {
	if signing == nil {
		return nil, errors.New("auth: no signing key")
	}
	if !signing.CanSign() {
		return nil, fmt.Errorf("auth: key %s has no private part and cannot sign", signing.kid)
	}
	s := &KeySet{signing: signing, byKID: map[string]*Key{}}
	for _, k := range append([]*Key{signing}, others...) {
		if k == nil {
			return nil, errors.New("auth: nil key")
		}
		if prev, ok := s.byKID[k.kid]; ok {
			if prev.alg != k.alg {
				return nil, fmt.Errorf("auth: two keys with key ID %s", k.kid)
			}
			continue
		}
		s.byKID[k.kid] = k
		s.keys = append(s.keys, k)
		if !containsString(s.algs, k.alg) {
			s.algs = append(s.algs, k.alg)
		}
	}
	return s, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Signing returns the key that signs new tokens.
func (s *KeySet) Signing() *Key { return s.signing }

// Lookup returns the key with the given key ID.
func (s *KeySet) Lookup(kid string) (*Key, bool) {
	k, ok := s.byKID[kid]
	return k, ok
}

// Keys returns all keys, the signing key first.
func (s *KeySet) Keys() []*Key { return append([]*Key(nil), s.keys...) }

// Algorithms returns the algorithms of the keys, without repetitions.
func (s *KeySet) Algorithms() []string { return append([]string(nil), s.algs...) }

// JWKS returns the public keys of the asymmetric keys as a JWK Set; it has no
// keys (not null) when all keys are HMAC keys.
func (s *KeySet) JWKS() JWKSet {
	set := JWKSet{Keys: []JWK{}}
	for _, k := range s.keys {
		if j, ok := k.Public(); ok {
			set.Keys = append(set.Keys, j)
		}
	}
	return set
}

// LoadOrCreateKeys returns a KeySet for a service with no configured keys:
// an HS256 key with a random 32-byte secret, generated once and kept in
// store under the name [DefaultKeyName], so that restarts and several
// instances share it. Of several instances starting at once exactly one
// creates the key and the others read it. A stored key of another algorithm
// (a PKCS#8 private key) is used as it is.
func LoadOrCreateKeys(ctx context.Context, store idm.KeyStore, now time.Time) (*KeySet, error) {
	stored, err := store.FindSigningKey(ctx, DefaultKeyName)
	if errors.Is(err, idm.ErrNotFound) {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24+).
		var k *Key
		if k, err = NewHMACKey(secret); err != nil {
			return nil, err
		}
		stored = idm.SigningKey{Name: DefaultKeyName, KID: k.kid, Alg: HS256, Secret: secret, Created: idm.Timestamp(now)}
		err = store.CreateSigningKey(ctx, stored)
		if errors.Is(err, idm.ErrConflict) {
			// Another instance created it first: use theirs.
			stored, err = store.FindSigningKey(ctx, DefaultKeyName)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: loading the signing key %q: %w", DefaultKeyName, err)
	}
	k, err := keyFromStore(stored)
	if err != nil {
		return nil, err
	}
	return NewKeySet(k)
}

// keyFromStore turns a stored key into a Key.
func keyFromStore(sk idm.SigningKey) (*Key, error) {
	switch sk.Alg {
	case HS256:
		if len(sk.Secret) < MinSecretBytes {
			return nil, fmt.Errorf("auth: the stored key %q has %d bytes; at least %d are required", sk.Name, len(sk.Secret), MinSecretBytes)
		}
		// A stored secret was generated at random: only its length matters.
		return hmacKey(sk.Secret), nil
	case EdDSA, RS256, ES256:
		key, err := x509.ParsePKCS8PrivateKey(sk.Secret)
		if err != nil {
			return nil, fmt.Errorf("auth: parsing the stored key %q: %w", sk.Name, err)
		}
		k, err := newPrivateKey(key)
		if err != nil {
			return nil, err
		}
		if k.alg != sk.Alg {
			return nil, fmt.Errorf("auth: the stored key %q is marked %s but is an %s key", sk.Name, sk.Alg, k.alg)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("auth: the stored key %q has the unsupported algorithm %q", sk.Name, sk.Alg)
	}
}
