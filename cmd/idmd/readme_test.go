package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEListsEverySetting checks that the configuration table of the
// README has a row for every variable and flag idmd reads.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	for _, s := range settings() {
		require.Contains(t, readme, "| `"+s.env+"` | `-"+s.flag+"` |", "README's configuration table lacks %s", s.env)
	}
}
