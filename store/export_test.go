package store

// SetListPage sets how many keys a List reads at a time, for tests of
// paging with few objects; the returned func puts it back.
func SetListPage(n int) (restore func()) {
	old := listPage
	listPage = n
	return func() { listPage = old }
}

// SpecChanged is specChanged, for tests of what bumps metadata.generation.
var SpecChanged = specChanged
