#!/usr/bin/env python3
"""Run the shell steps of action.yml as GitHub's runner would, on a fixture pair, and check them.

usage: action_test.py MODEL REFERENCE OTHER_REFERENCE

MODEL against REFERENCE is a clean pair, MODEL against OTHER_REFERENCE a broken one.

action.yml is parsed with PyYAML; each `run` step gets its `env` with the `${{ inputs.* }}`,
`${{ github.action_path }}` and `${{ steps.*.outputs.* }}` expressions replaced by this test's
values, runs under `bash --noprofile --norc -eo pipefail` (GitHub's `shell: bash`) with
RUNNER_TEMP, GITHUB_PATH and GITHUB_OUTPUT files, and each step's `if:` is evaluated. The `uses:`
step (upload-sarif) cannot run here: the test checks it would run, on the file the lint step wrote.
The SARIF written is validated against the OASIS 2.1.0 schema (fixtures/sarif/).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def value(expr, inputs, steps):
    """One `${{ }}` operand: inputs.X, steps.ID.outputs.X, github.action_path."""
    if expr == "github.action_path":
        return ROOT
    m = re.fullmatch(r"inputs\.([\w-]+)", expr)
    if m:
        return inputs[m.group(1)]
    m = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
    if m:
        return steps.get(m.group(1), {}).get(m.group(2), "")
    raise SystemExit(f"action_test: expression not understood: {expr}")


def condition(text, inputs, steps):
    """A step's `if:` (the subset action.yml uses: always(), ==, &&, string literals)."""
    if text is None:
        return True
    text = EXPR.sub(lambda m: m.group(1), str(text)).strip()
    truth = True
    for part in text.split("&&"):
        part = part.strip()
        if part == "always()":
            continue
        m = re.fullmatch(r"([\w.-]+)\s*==\s*'([^']*)'", part)
        if not m:
            raise SystemExit(f"action_test: condition not understood: {part}")
        truth = truth and value(m.group(1), inputs, steps) == m.group(2)
    return truth


def run_action(action, given, workdir):
    """Run every step; returns (steps' outputs, [(step name, exit code, stdout)], uploads)."""
    inputs = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    inputs.update(given)
    temp = tempfile.mkdtemp(dir=workdir, prefix="runner-")
    gh_path = os.path.join(temp, "GITHUB_PATH")
    open(gh_path, "w").close()
    steps, results, uploads = {}, [], []
    path_extra = []
    for step in action["runs"]["steps"]:
        if not condition(step.get("if"), inputs, steps):
            continue
        if "uses" in step:
            uploads.append((step["uses"], EXPR.sub(lambda m: value(m.group(1), inputs, steps), step["with"]["sarif_file"])))
            continue
        assert step.get("shell") == "bash", f"step {step['name']}: shell must be bash"
        assert "${{" not in step["run"], f"step {step['name']}: expressions inside the script"
        gh_out = os.path.join(temp, "GITHUB_OUTPUT")
        open(gh_out, "w").close()
        env = dict(os.environ)
        env.update(
            RUNNER_TEMP=temp,
            GITHUB_PATH=gh_path,
            GITHUB_OUTPUT=gh_out,
            PATH=os.pathsep.join(path_extra + [os.environ["PATH"]]),
        )
        for k, v in (step.get("env") or {}).items():
            env[k] = EXPR.sub(lambda m: value(m.group(1), inputs, steps), str(v))
        script = os.path.join(temp, "step.sh")
        with open(script, "w") as f:
            f.write(step["run"])
        p = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", script],
            cwd=workdir, env=env, capture_output=True, text=True,
        )
        sys.stderr.write(p.stderr)
        results.append((step["name"], p.returncode, p.stdout))
        with open(gh_path) as f:
            path_extra = [l.strip() for l in f if l.strip()][::-1]
        outs = {}
        with open(gh_out) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    outs[k] = v
        if "id" in step:
            steps[step["id"]] = outs
        if p.returncode != 0:
            break
    return steps, results, uploads


def check(ok, what):
    if not ok:
        raise SystemExit(f"action_test: FAILED: {what}")
    print(f"action_test: ok: {what}")


def main():
    model, ref, other = (os.path.abspath(a) for a in sys.argv[1:4])
    with open(os.path.join(ROOT, "action.yml")) as f:
        action = yaml.safe_load(f)
    with open(os.path.join(ROOT, "fixtures/sarif/sarif-schema-2.1.0.json")) as f:
        schema = jsonschema.Draft4Validator(json.load(f))
    install = os.environ.get("ACTION_TEST_INSTALL_ARGS", "")
    work = tempfile.mkdtemp(prefix="apr-lint-action-")

    # 1. SARIF, a clean pair: exit 0, a valid log, uploaded, the job passes.
    steps, results, uploads = run_action(
        action, {"paths": model, "reference": ref, "cargo-install-args": install}, work)
    check([r[1] for r in results] == [0, 0, 0], f"sarif, clean pair: every step passes {[(r[0], r[1]) for r in results]}")
    sarif = os.path.join(work, "apr-lint.sarif")
    log = json.load(open(sarif))
    errors = list(schema.iter_errors(log))
    check(not errors, f"sarif, clean pair: the log validates against SARIF 2.1.0 {[e.message for e in errors[:3]]}")
    check(log["runs"][0]["invocations"][0]["exitCode"] == 0 and steps["lint"]["exit-code"] == "0",
          "sarif, clean pair: exit-code output 0")
    check(uploads == [("github/codeql-action/upload-sarif@v3", "apr-lint.sarif")],
          f"sarif, clean pair: upload-sarif runs on the log written {uploads}")

    # 2. SARIF, a broken pair: the log is still written, valid and uploaded; the job fails (1).
    steps, results, uploads = run_action(
        action, {"paths": model, "reference": other, "cargo-install-args": install}, work)
    check([r[1] for r in results] == [0, 0, 1], f"sarif, broken pair: only the verdict step fails {[(r[0], r[1]) for r in results]}")
    log = json.load(open(sarif))
    errors = list(schema.iter_errors(log))
    check(not errors, "sarif, broken pair: the log validates against SARIF 2.1.0")
    levels = [r["level"] for r in log["runs"][0]["results"]]
    check("error" in levels and steps["lint"]["exit-code"] == "1", "sarif, broken pair: error results, exit-code 1")
    check(len(uploads) == 1, "sarif, broken pair: the log is uploaded although the lint failed")

    # 3. Annotations, a broken pair: `::error file=…` lines, nothing uploaded, the job fails.
    steps, results, uploads = run_action(
        action, {"paths": model, "reference": other, "format": "github", "cargo-install-args": install}, work)
    check([r[1] for r in results] == [0, 0, 1], "github, broken pair: only the verdict step fails")
    check(any(l.startswith("::error file=") for l in results[1][2].splitlines()), "github, broken pair: error annotations printed")
    check(uploads == [], "github: nothing uploaded")
    shutil.rmtree(work)
    print("action_test: 3 scenarios passed")


if __name__ == "__main__":
    main()
