package main

import (
	"context"
	"fmt"
)

// migrateCmd brings over the database of the original service (see
// package migrate).
func migrateCmd(ctx context.Context, args []string, std stdio) int {
	fmt.Fprintln(std.err, "idmd: migrate is not wired yet")
	return exitFail
}
