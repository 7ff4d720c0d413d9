#!/usr/bin/env bash
# Lists the packages whose tests need root: those whose tests call
# RequiresRoot (test/testutil) or a local requiresRoot. test/e2e has its own tier.
cd "$(dirname "$0")/.."
grep -rlE 'RequiresRoot\(|requiresRoot\(' --include='*_test.go' . | grep -v '^./test/e2e/' | xargs -r -n1 dirname | sort -u
