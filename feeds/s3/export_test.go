package s3

// SetBatchSizes makes List and Delete page with a handful of keys, so that
// tests see several pages without writing thousands of objects.
func SetBatchSizes(s *Store, listPage int32, deleteBatch int) {
	s.listPageSize, s.deleteBatchSize = listPage, deleteBatch
}
