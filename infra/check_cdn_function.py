#!/usr/bin/env python3
"""Checks that the storefront's CloudFront Function in infra/template.yaml is infra/cdn/tenant-router.js.

infra/cdn/tenant-router.js is the one source of the tenant rules: the local static server runs
it and infra/cdn/tenant-router.test.mjs tests it. The template must inline that file unchanged,
except its `var HOSTNAMES = {};` line, which becomes the StorefrontHostnames parameter
(Fn::Sub), and must run it where it isolates tenants: on viewer-request of the distribution's
default behaviour, with runtime cloudfront-js-2.0, published (AutoPublish) so the distribution
uses this code. Any difference is printed, one line each, so the CDN and the server that the
browser tests drive cannot drift apart silently.

Usage: check_cdn_function.py [--template PATH] [--code PATH] [--write]
  --write  replaces the function's code in the template with the file's (then checks).
Exit status: 0 when they match, 1 on any difference, 2 when a file cannot be read.
Needs PyYAML (infra/check.sh runs this with the cfn-lint virtualenv's Python, which has it).
"""

import argparse
import re
import sys
from pathlib import Path

from check_table import load_template, yaml

INFRA_DIR = Path(__file__).resolve().parent
FUNCTION_TYPE = "AWS::CloudFront::Function"
DISTRIBUTION_TYPE = "AWS::CloudFront::Distribution"
PLACEHOLDER = "var HOSTNAMES = {};"
DEPLOYED = "var HOSTNAMES = ${StorefrontHostnames};"
RUNTIME = "cloudfront-js-2.0"
# CloudFront's limit on a function's code, and the longest value StorefrontHostnames may take.
FUNCTION_CODE_BYTES_MAX = 10 * 1024
HOSTNAMES_PARAMETER_CHARS_MAX = 4096


def expected_code(code):
    """The template's Fn::Sub text for the router file, or raises ValueError."""
    if code.count(PLACEHOLDER) != 1:
        raise ValueError(f"the router must hold `{PLACEHOLDER}` exactly once")
    if "${" in code:
        raise ValueError("the router holds `${`, which Fn::Sub would read as a variable")
    return code.replace(PLACEHOLDER, DEPLOYED)


def the_only(resources, kind):
    found = [(n, r) for n, r in resources.items() if isinstance(r, dict) and r.get("Type") == kind]
    if len(found) != 1:
        raise ValueError(f"expected exactly one {kind}, found {len(found)}")
    return found[0]


def differences(template, code):
    lines = []
    want = expected_code(code)
    resources = template.get("Resources") or {}
    name, function = the_only(resources, FUNCTION_TYPE)
    props = function.get("Properties") or {}
    sub = (props.get("FunctionCode") or {}).get("Fn::Sub") if isinstance(props.get("FunctionCode"), dict) else None
    if sub != want:
        lines.append(f"{name}.FunctionCode is not `!Sub` of tenant-router.js (run with --write)")
    if (props.get("FunctionConfig") or {}).get("Runtime") != RUNTIME:
        lines.append(f"{name} must run on {RUNTIME}")
    if props.get("AutoPublish") is not True:
        lines.append(f"{name} must set AutoPublish: true (the distribution runs the LIVE stage)")
    if len(want.encode()) - len(DEPLOYED) + HOSTNAMES_PARAMETER_CHARS_MAX > FUNCTION_CODE_BYTES_MAX:
        lines.append(f"{name}: code plus a full StorefrontHostnames exceeds {FUNCTION_CODE_BYTES_MAX} bytes")
    parameter = (template.get("Parameters") or {}).get("StorefrontHostnames") or {}
    if int(parameter.get("MaxLength", 0)) != HOSTNAMES_PARAMETER_CHARS_MAX:
        lines.append(f"StorefrontHostnames needs MaxLength {HOSTNAMES_PARAMETER_CHARS_MAX}")
    dist_name, dist = the_only(resources, DISTRIBUTION_TYPE)
    config = (dist.get("Properties") or {}).get("DistributionConfig") or {}
    behaviours = [("DefaultCacheBehavior", config.get("DefaultCacheBehavior") or {})]
    behaviours += [(f"CacheBehaviors[{i}]", b) for i, b in enumerate(config.get("CacheBehaviors") or [])]
    for where, behaviour in behaviours:
        associations = behaviour.get("FunctionAssociations") or []
        if not any(
            a.get("EventType") == "viewer-request" and a.get("FunctionARN") == {"Fn::GetAtt": [name, "FunctionARN"]}
            for a in associations
        ):
            lines.append(f"{dist_name}.{where} does not run {name} on viewer-request")
    return lines


def write(template_path, code):
    """Replaces the literal block under `FunctionCode: !Sub |` with the router's code."""
    text = template_path.read_text(encoding="utf-8")
    match = re.search(r"^( +)FunctionCode: !Sub \|\n((?:\1  .*\n|\n)+)", text, re.MULTILINE)
    if not match:
        raise ValueError("no `FunctionCode: !Sub |` block in the template")
    indent = match.group(1) + "  "
    body = "".join(indent + line + "\n" if line else "\n" for line in expected_code(code).split("\n")[:-1])
    # The block ends at its last non-blank line; blank lines after it belong to the template.
    old = match.group(2)
    trailing = old[len(old.rstrip("\n")) + 1 :]
    template_path.write_text(text[: match.start(2)] + body + trailing + text[match.end(2) :], encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=INFRA_DIR / "template.yaml", type=Path)
    parser.add_argument("--code", default=INFRA_DIR / "cdn" / "tenant-router.js", type=Path)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    try:
        code = args.code.read_text(encoding="utf-8")
        if args.write:
            write(args.template, code)
        lines = differences(load_template(args.template), code)
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"check_cdn_function: cannot compare: {err}", file=sys.stderr)
        return 2
    for line in lines:
        print(f"check_cdn_function: {line}")
    if lines:
        print(f"check_cdn_function: {len(lines)} difference(s)")
        return 1
    print(f"check_cdn_function: {args.template.name} runs {args.code.name} unchanged on viewer-request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
