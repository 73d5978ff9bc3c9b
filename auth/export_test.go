package auth

// SetRunHook makes p call f on a hashing worker before each hash or
// comparison (the dummy comparison of an unknown account included), so that
// tests can count password checks or hold them. Call it before p is used.
func SetRunHook(p *Passwords, f func()) { p.onRun = f }
