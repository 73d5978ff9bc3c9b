//go:build !linux

package auth

// lowerThreadPriority does nothing outside Linux, where niceness is not per
// thread.
func lowerThreadPriority(int) {}
