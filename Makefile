# banger's build, test and release entry points. `make help` lists them.
SHELL := bash
GO ?= go
GOLANGCI := $(GO) tool -modfile=tools/go.mod golangci-lint
SHELL_SCRIPTS := $(wildcard scripts/*.sh) .ci/run
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/thaloco/banger/internal/cli.version=$(VERSION)

.PHONY: help setup deps build control-plane test test-go lint lint-go lint-shell bench kernel golden clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: deps build ## install apt dependencies and build bin/banger

deps: ## install the Debian/Ubuntu packages (apt)
	scripts/install-deps.sh

build: ## build bin/banger
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/banger ./cmd/banger

control-plane: ## build kube-apiserver for the banger node tests, once per version (cached outside the checkout)
	scripts/build-control-plane.sh

test: build lint-shell control-plane ## run every test (unit, CLI scripts, real QEMU boots, pipelines)
	$(GO) vet ./...
	$(GO) test -race -timeout 80m ./...

lint: lint-go lint-shell ## gofmt, go vet, golangci-lint, shellcheck

lint-go:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GOLANGCI) run ./...

lint-shell: ## shellcheck over scripts/ at warning severity
	shellcheck --severity=warning $(SHELL_SCRIPTS)

bench: build ## run the benchmarks (pull, image build, boot, snapshot restore, vm create, node pods; snapshot and create need a golden image)
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...
	scripts/bench-pull.sh
	scripts/bench-image.sh
	scripts/bench-boot.sh
	scripts/bench-snapshot.sh
	scripts/bench-create.sh
	scripts/bench-node.sh

kernel: build ## build generic-6.12 from source and import it
	scripts/make-generic-kernel.sh
	bin/banger kernel import generic-6.12 --from build/manual/generic-kernel --distro generic --arch x86_64 --force

golden: build ## build the golden Debian image
	scripts/build-golden.sh

clean: ## remove build outputs
	rm -rf bin build
