package auth

import "syscall"

// lowerThreadPriority sets the niceness of the calling OS thread (on Linux
// the nice value is per thread). A failure leaves the thread as it was:
// hashing then merely competes with the rest of the service as before.
func lowerThreadPriority(nice int) {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice)
}
