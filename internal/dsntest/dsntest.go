// Package dsntest makes connection strings of every shape libpq accepts,
// each with a password, combined with every way a connection can fail, for
// tests that check that no password is ever printed.
package dsntest

import (
	"fmt"
	"strings"
)

// Secret is the password of every case; SecretTail is the part after an
// unencoded '@' in the password of the URL shape that has one.
const (
	Secret     = "S3cret-Pw-4711"
	SecretTail = "Tail-0815"
)

// Secrets are the strings no output may contain.
var Secrets = []string{Secret, SecretTail}

// Case is one connection string and the kind of failure it was made for.
type Case struct {
	Name string // shape/kind
	DSN  string
}

// Server is where a connection string points when its failure needs a
// server: a login with a wrong password.
type Server struct {
	Host      string
	Port      int
	Database  string
	WrongUser string // a user that must give a password, and every password is wrong
}

type parts struct {
	host, port, user, pw, db string
	extra                    [][2]string // more parameters
	unterminated             bool        // the password's quote is never closed
}

type shape struct {
	name   string
	url    bool
	render func(p parts) string
}

func kv(p parts, pw string) string {
	s := fmt.Sprintf("host=%s port=%s user=%s dbname=%s connect_timeout=2", p.host, p.port, p.user, p.db)
	for _, e := range p.extra {
		s += " " + e[0] + "=" + e[1]
	}
	return s + " " + pw
}

func urlOf(p parts, userinfo string, query ...string) string {
	q := append([]string{"connect_timeout=2"}, query...)
	for _, e := range p.extra {
		q = append(q, e[0]+"="+e[1])
	}
	return fmt.Sprintf("postgres://%s@%s:%s/%s?%s", userinfo, p.host, p.port, p.db, strings.Join(q, "&"))
}

var shapes = []shape{
	{"keyword", false, func(p parts) string {
		if p.unterminated {
			return kv(p, "password='"+p.pw)
		}
		return kv(p, "password="+p.pw)
	}},
	{"keyword spaces around =", false, func(p parts) string {
		if p.unterminated {
			return kv(p, "password = '"+p.pw+" dbname = x")
		}
		return strings.Replace(kv(p, "password = "+p.pw), "dbname=", "dbname = ", 1)
	}},
	{"keyword quoted", false, func(p parts) string {
		if p.unterminated {
			return kv(p, `password='a b\'c `+p.pw)
		}
		return kv(p, `password='a b\'c `+p.pw+`'`)
	}},
	{"url", true, func(p parts) string { return urlOf(p, p.user+":"+p.pw) }},
	{"url password in query", true, func(p parts) string { return urlOf(p, p.user, "password="+p.pw) }},
	{"url unencoded @", true, func(p parts) string { return urlOf(p, p.user+":"+p.pw+"@"+SecretTail) }},
}

type kind struct {
	name  string
	apply func(p *parts, s Server)
}

var kinds = []kind{
	{"bad sslmode", func(p *parts, _ Server) { p.extra = append(p.extra, [2]string{"sslmode", "bogus"}) }},
	{"unknown host", func(p *parts, _ Server) { p.host = "no-such-host.invalid" }},
	{"refused port", func(p *parts, _ Server) { p.port = "1" }},
	{"wrong password", func(p *parts, s Server) { p.user = s.WrongUser }},
	{"bad URL escape", func(p *parts, _ Server) { p.pw += "%zz" }},
	{"unterminated quote", func(p *parts, _ Server) { p.unterminated = true }},
}

// Cases returns every shape combined with every failure kind that applies
// to it: a bad URL escape to URLs, an unterminated quote to keyword/value
// strings.
func Cases(s Server) []Case {
	var out []Case
	for _, sh := range shapes {
		for _, k := range kinds {
			if sh.url && k.name == "unterminated quote" || !sh.url && k.name == "bad URL escape" {
				continue
			}
			p := parts{host: s.Host, port: fmt.Sprint(s.Port), user: "app", pw: Secret, db: s.Database}
			k.apply(&p, s)
			out = append(out, Case{Name: sh.name + "/" + k.name, DSN: sh.render(p)})
		}
	}
	return out
}

// Leaked returns the secrets that out contains.
func Leaked(out string) []string {
	var found []string
	for _, s := range Secrets {
		if strings.Contains(out, s) {
			found = append(found, s)
		}
	}
	return found
}
