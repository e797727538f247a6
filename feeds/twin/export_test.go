package twin

// ApplyWithoutMerge makes f apply deltas as it does on PostgreSQL before
// 15, which has no MERGE, so that tests on PostgreSQL 15 cover that path.
func ApplyWithoutMerge(f *Feed) { f.noMerge = true }
