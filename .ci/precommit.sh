#!/usr/bin/env bash
# The pre-commit hook as a user runs it: a fresh Git repository, the README's
# .pre-commit-config.yaml (its `repo:` pointed at this checkout and `rev:` at HEAD), pre-commit from
# PyPI in a virtual environment. A good pair commits; a commit that changes only the .apr of a pair
# into a transposed one is blocked with the finding (its .gguf comes from the working tree); an LFS
# pointer is blocked with "run `git lfs pull`". Needs python3, git, cargo and PyPI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rev="$(git -C "$root" rev-parse HEAD)"
work="$root/target/precommit-test"
rm -rf "$work"
mkdir -p "$work"
t0=$(date +%s)

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "pre-commit==4.7.0"
export PATH="$work/venv/bin:$PATH"
export PRE_COMMIT_HOME="$work/cache"
# cargo install (run by pre-commit) builds into a directory of the checkout's target/ (reused by
# later runs; kept apart from target/release, whose binaries it would otherwise replace).
export CARGO_TARGET_DIR="$root/target/precommit"
# Only the hook's mechanics are under test here: a quicker release build (users get the default).
export CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_INCREMENTAL=0
export NO_COLOR=1

# The pairs: tiny generated models (examples/make_pair).
# (into the checkout's own target/, not the hook's CARGO_TARGET_DIR above)
(cd "$root" && CARGO_TARGET_DIR="$root/target" cargo build -q --example make_pair)
make_pair="$root/target/debug/examples/make_pair"

repo="$work/repo"
mkdir -p "$repo/models"
cd "$repo"
git init -q
git config user.email ci@example.invalid
git config user.name CI
git config commit.gpgsign false
# The README's snippet, verbatim but for the repository and the revision.
sed -n '/pre-commit-config:begin/,/pre-commit-config:end/p' "$root/README.md" \
    | sed -e '1,/^```yaml$/d' -e '/^```$/,$d' \
    | sed -e "s|^\(\s*- repo: \).*|\1$root|" -e "s|^\(\s*rev: \).*|\1$rev|" \
    > .pre-commit-config.yaml
grep -q 'id: apr-lint' .pre-commit-config.yaml || { echo "no apr-lint hook in the README snippet"; exit 1; }
cat .pre-commit-config.yaml
git add .pre-commit-config.yaml
git commit -q -m "pre-commit config"
pre-commit install
echo "installing the hook (builds apr-lint)…"
pre-commit install-hooks
t1=$(date +%s)

expect() { # expect pass|block LOG PATTERN…
    local want=$1 log=$2; shift 2
    if [ "$want" = pass ] && [ "$status" -ne 0 ]; then cat "$log"; echo "FAIL: the commit was blocked"; exit 1; fi
    if [ "$want" = block ] && [ "$status" -eq 0 ]; then cat "$log"; echo "FAIL: the commit went through"; exit 1; fi
    for p in "$@"; do
        grep -qF -- "$p" "$log" || { cat "$log"; echo "FAIL: \`$p\` not in the hook's output"; exit 1; }
    done
}

# 1. A good pair commits.
"$make_pair" models/tiny.gguf models/tiny.apr
git add models
status=0; git commit -m "good pair" >"$work/1.log" 2>&1 || status=$?
expect pass "$work/1.log" "apr-lint" "Passed"
echo "ok: a good pair commits"

# 2. Only the .apr changes, into a transposed conversion: paired with the committed .gguf, blocked.
"$make_pair" "$work/scratch.gguf" models/tiny.apr --transpose
git add models/tiny.apr
status=0; git commit -m "transposed" >"$work/2.log" 2>&1 || status=$?
expect block "$work/2.log" "APRL-N002 transposed" "models/tiny.apr against models/tiny.gguf" "FAIL"
git reset -q --hard HEAD
echo "ok: a transposed .apr is blocked with its finding"

# 3. An LFS pointer (the model was never pulled): blocked with the fix, not "bad magic".
printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%064d\nsize 933388576\n' 0 >models/big.gguf
git add models/big.gguf
status=0; git commit -m "lfs pointer" >"$work/3.log" 2>&1 || status=$?
expect block "$work/3.log" "APRL-F004" "git lfs pull"
if grep -q "neither GGUF nor APR" "$work/3.log"; then cat "$work/3.log"; echo "FAIL: reported as bad magic"; exit 1; fi
echo "ok: an LFS pointer is blocked with \"run \`git lfs pull\`\""

t2=$(date +%s)
echo "pre-commit test: 3 passed, 0 failed (hook install $((t1 - t0)) s, commits $((t2 - t1)) s)"
rm -rf "$work"
