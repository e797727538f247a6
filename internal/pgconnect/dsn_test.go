package pgconnect_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nopii/nopii/internal/dsntest"
	"github.com/nopii/nopii/internal/pgconnect"
	"github.com/nopii/nopii/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:pw@h/db", "postgres://u:xxxxx@h/db"},
		{"postgresql://u:pw@h:5432,h2:5433/db?sslmode=require", "postgresql://u:xxxxx@h:5432,h2:5433/db?sslmode=require"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db", "postgres://h/db"},
		{"postgres://u:p@ss/w?rd@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://app:Secret@123@host/db", "postgres://app:xxxxx@host/db"},
		{"postgres://h/db?user=u&password=pw&sslmode=disable", "postgres://h/db?user=u&password=xxxxx&sslmode=disable"},
		{"postgres://h/db?sslpassword=pw", "postgres://h/db?sslpassword=xxxxx"},
		{"postgres://h/db?application_name=a@b&password=pw", "postgres://h/db?application_name=a@b&password=xxxxx"},
		{"host=h user=u password=pw dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password = S3cret dbname=d", "host=h password = xxxxx dbname=d"},
		{"host=h password = 'p w\\' x' dbname=d", "host=h password = xxxxx dbname=d"},
		{`host=h password=a\ b dbname=d`, "host=h password=xxxxx dbname=d"},
		{"host=h sslpassword=pw", "host=h sslpassword=xxxxx"},
		{"password=pw", "password=xxxxx"},
		{"host=h PASSWORD=pw", "host=h PASSWORD=xxxxx"},
		{"host=h junk password=pw", "host=h xxxxx"},
		{"host='h password=pw", "host=xxxxx"},
		{"host=h password='unterminated", "host=h password=xxxxx"},
		{"host=h password= dbname=d", "host=h password= xxxxx"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := pgconnect.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestParseConfigErrors: a DSN that pgx reads but rejects is named
// redacted, with what is wrong; one it cannot read is not named at all.
func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		dsn        string
		want       string // in the message
		shown      bool   // the (redacted) DSN is in the message
		notPrinted []string
	}{
		{"host=127.0.0.1 port=5432 user=app password = S3cret dbname=prod sslmode=bogus", "sslmode is invalid", true, []string{"S3cret"}},
		{`host=h user=app password='a b\'c' sslmode=bogus`, "sslmode is invalid", true, []string{"a b", `\'c`}},
		{`host=h user=app password='a b\'c sslmode=bogus`, "unterminated quoted string", false, []string{"a b", "sslmode=bogus"}},
		{"postgres://app:Secret@123@host/db", `percent-encode "@"`, true, []string{"Secret", "123"}},
		{"postgres://app:Secret@123@host/db?sslmode=bogus", "sslmode is invalid", true, []string{"Secret", "123"}},
		{"postgres://app:Se%zzcret@host/db", "invalid percent-encoded token in password", false, []string{"Se%zzcret", "cret"}},
		{"postgres://app@host/db?password=Secret&sslmode=bogus", "sslmode is invalid", true, []string{"Secret"}},
		{"postgres://app:Secret@host:abc/db", "invalid port", true, []string{"Secret"}},
		{"host=h password Secret", "failed to parse as keyword/value", false, []string{"Secret"}},
		{"host=h password=Secret port=x", "invalid port", true, []string{"Secret"}},
	} {
		_, err := pgconnect.ParseConfig(tc.dsn)
		var de *pgconnect.DSNError
		if !errors.As(err, &de) {
			t.Errorf("ParseConfig(%q) = %v, want a DSNError", tc.dsn, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) {
			t.Errorf("ParseConfig(%q): %q does not say %q", tc.dsn, msg, tc.want)
		}
		if shown := de.DSN != ""; shown != tc.shown || shown && !strings.Contains(msg, "xxxxx") {
			t.Errorf("ParseConfig(%q): %q: DSN shown %v, want %v", tc.dsn, msg, shown, tc.shown)
		}
		for _, s := range tc.notPrinted {
			if strings.Contains(msg, s) {
				t.Errorf("ParseConfig(%q): %q holds %q", tc.dsn, msg, s)
			}
		}
	}
}

// TestDSNCasesHideSecrets: every DSN shape with every failure kind, parsed
// and connected: no error holds the password.
func TestDSNCasesHideSecrets(t *testing.T) {
	c := pgtest.MustCluster(t)
	cases := dsntest.Cases(dsntest.Server{Host: "127.0.0.1", Port: c.Port, Database: "postgres", WrongUser: pgtest.PasswordUser})
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := pgconnect.Connect(ctx, tc.DSN, pgconnect.Options{What: "test", Attempts: 2, Backoff: 10 * time.Millisecond})
			if err == nil {
				conn.Close(ctx)
				t.Fatalf("%s connected", tc.DSN)
			}
			if leaked := dsntest.Leaked(err.Error()); len(leaked) > 0 {
				t.Errorf("error holds %q: %v", leaked, err)
			}
			t.Log(err)
		})
	}
}
