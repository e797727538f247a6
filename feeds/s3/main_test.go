package s3_test

import (
	"testing"

	"github.com/nopii/nopii/internal/s3test"
)

// TestMain shares one versitygw among the package's tests.
func TestMain(m *testing.M) { s3test.Main(m) }
