// Package archtest holds the test that keeps the dependency direction of
// ARCHITECTURE.md true: it lists every package of the module with `go list`
// and fails on an import that the table in rules does not allow.
package archtest
