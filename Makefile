# nopii. `make test` is what CI runs (.ci/run); it needs Go and the
# PostgreSQL server binaries (apt-get install postgresql-15), nothing else.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/nopii/nopii/cmd.version=$(VERSION)
TESTFLAGS ?=
PKGS      ?= ./...

# Go files to format-check: everything but testdata, which may hold
# deliberately odd Go.
GOFILES = $(shell find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*')

.PHONY: build test bench lint demo fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/nopii ./cmd/nopii

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(TESTFLAGS) $(PKGS)

bench:
	$(GO) run ./bench

lint:
	@unformatted="$$(gofmt -l $(GOFILES))"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt -l: these files need gofmt -w:"; echo "$$unformatted"; exit 1; \
	fi
	$(GO) vet ./...
	@staticcheck="$$(command -v staticcheck || ls "$$($(GO) env GOPATH)/bin/staticcheck" 2>/dev/null || true)"; \
	if [ -n "$$staticcheck" ]; then \
		echo "$$staticcheck ./..."; "$$staticcheck" ./...; \
	else \
		echo "staticcheck not installed, skipped: go install honnef.co/go/tools/cmd/staticcheck@latest"; \
	fi

demo:
	$(GO) run ./internal/demo

# Every fuzz target for FUZZTIME each, retried once on failure (CI runs them briefly; run longer by
# hand: make fuzz FUZZTIME=5m). The seed corpora also run in `make test`.
FUZZTIME ?= 10s
fuzz:
	@set -e; for pkg in ./config ./redact ./rulesets; do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg || \
			{ echo "retrying $$f once (Go's fuzz engine sometimes stops with 'context deadline exceeded'; a real crasher is saved under testdata/fuzz and fails again)"; \
			  $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; }; \
		done; \
	done

clean:
	rm -rf bin
