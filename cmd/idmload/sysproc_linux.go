package main

import "syscall"

// childAttr makes a child process receive SIGTERM when idmload dies, so
// that no server outlives an interrupted benchmark.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
