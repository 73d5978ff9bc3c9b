//go:build tools

// Package deps pins the project's dependencies while packages that use them
// are being written; it is never built.
package deps

import (
	_ "github.com/FerretDB/FerretDB/ferretdb"
	_ "github.com/chromedp/chromedp"
	_ "github.com/emersion/go-smtp"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/jordan-wright/email"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/stretchr/testify/require"
	_ "go.etcd.io/bbolt"
	_ "go.mongodb.org/mongo-driver/v2/mongo"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/text/unicode/norm"
	_ "golang.org/x/time/rate"
)
