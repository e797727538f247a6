package s3_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// S3 operations as the proxy tells them apart.
const (
	opPutObject       = "PutObject"
	opGetObject       = "GetObject"
	opHeadObject      = "HeadObject"
	opCreateMultipart = "CreateMultipartUpload"
	opUploadPart      = "UploadPart"
	opComplete        = "CompleteMultipartUpload"
	opAbort           = "AbortMultipartUpload"
	opListObjects     = "ListObjectsV2"
	opListUploads     = "ListMultipartUploads"
	opDeleteObjects   = "DeleteObjects"
	opOther           = "other"
)

// operation names the S3 API call of a path-style request.
func operation(r *http.Request) string {
	q := r.URL.Query()
	switch r.Method {
	case http.MethodPut:
		if q.Has("partNumber") && q.Has("uploadId") {
			return opUploadPart
		}
		return opPutObject
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return opCreateMultipart
		case q.Has("uploadId"):
			return opComplete
		case q.Has("delete"):
			return opDeleteObjects
		}
	case http.MethodDelete:
		if q.Has("uploadId") {
			return opAbort
		}
	case http.MethodGet:
		switch {
		case q.Get("list-type") == "2":
			return opListObjects
		case q.Has("uploads"):
			return opListUploads
		default:
			return opGetObject
		}
	case http.MethodHead:
		return opHeadObject
	}
	return opOther
}

// request is what the proxy saw of one request.
type request struct {
	Op     string
	Path   string
	Query  url.Values
	Header http.Header
}

// fault is what the proxy does to a request instead of forwarding it.
type fault struct {
	status int           // answer with this status and an S3 error document
	code   string        // the error code, e.g. InternalError or SlowDown
	drop   bool          // read half the body, then close the connection
	delay  time.Duration // wait this long (or until the client gives up), then forward
}

// faultFunc decides the fault for a request; attempt counts the requests
// with the same operation, path and part number, from 1.
type faultFunc func(r *http.Request, op string, attempt int) *fault

// proxy is a reverse proxy in front of versitygw that records every
// request and injects faults. Clients sign requests for the proxy's
// address; the proxy forwards the Host header as it came, so the gateway
// checks the signatures against the same host.
type proxy struct {
	*httptest.Server

	mu       sync.Mutex
	requests []request
	attempts map[string]int
	faults   faultFunc
	injected int
}

func newProxy(t *testing.T, target string, faults faultFunc) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &proxy{attempts: map[string]int{}, faults: faults}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := operation(r)
		id := op + " " + r.URL.Path + " " + r.URL.Query().Get("partNumber")
		p.mu.Lock()
		p.requests = append(p.requests, request{Op: op, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()})
		p.attempts[id]++
		attempt := p.attempts[id]
		var f *fault
		if p.faults != nil {
			f = p.faults(r, op, attempt)
		}
		if f != nil {
			p.injected++
		}
		p.mu.Unlock()

		switch {
		case f == nil:
			rp.ServeHTTP(w, r)
		case f.delay > 0:
			// A slow or stalled server: the body is read, the answer
			// comes late, if the client still waits for it.
			body, _ := io.ReadAll(r.Body)
			select {
			case <-r.Context().Done():
				return
			case <-time.After(f.delay):
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			rp.ServeHTTP(w, r)
		case f.drop:
			// Half the body, then a reset: the client is mid-upload.
			_, _ = io.CopyN(io.Discard, r.Body, max(r.ContentLength/2, 1))
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(fmt.Sprintf("hijack: %v", err))
			}
			conn.Close()
		default:
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(f.status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test proxy</Message><RequestId>proxy</RequestId></Error>`, f.code)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

// ops returns the operations seen, in order.
func (p *proxy) ops() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.requests))
	for i, r := range p.requests {
		out[i] = r.Op
	}
	return out
}

// count returns how many requests of op the proxy saw.
func (p *proxy) count(op string) int {
	n := 0
	for _, o := range p.ops() {
		if o == op {
			n++
		}
	}
	return n
}

// seen returns the requests of op.
func (p *proxy) seen(op string) []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []request
	for _, r := range p.requests {
		if r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

func (p *proxy) injectedFaults() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected
}

func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = nil
}
