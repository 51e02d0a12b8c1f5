package sqlite

// SetStmtCacheOff makes Open's connections keep no statements until the
// function it returns is called.
func SetStmtCacheOff() (restore func()) {
	stmtCacheOff = true
	return func() { stmtCacheOff = false }
}
