package nopii

// PageRange is a slice of a table's heap pages, [From, To): a large table's
// full copy is read as several page ranges at once, each by its own
// connection in the same snapshot. To is 0 for "to the end of the table",
// so rows on pages added after the split are never missed.
type PageRange struct {
	From uint32
	To   uint32
}
