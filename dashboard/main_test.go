package dashboard_test

import (
	"testing"

	"github.com/nopii/nopii/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
