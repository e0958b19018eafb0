#!/usr/bin/env python3
"""Checks that the billing table in infra/template.yaml matches infra/table.json.

infra/table.json is the one source of truth of the key schema: the rater creates its local
table from it (include_str!), and infra/dynamodb-local.sh creates DynamoDB Local's table from
it. This script fails when the template's table drifts from it, printing one line per
difference, so the deployed table and the local one cannot disagree silently.

Compared: AttributeDefinitions and KeySchema (as sets of name/type pairs; order carries no
meaning in either), BillingMode, and the TTL attribute (TimeToLiveAttribute in table.json,
TimeToLiveSpecification in the template, which must also be enabled). Not compared: the table
name (a parameter in the template, "ratecard-local" locally) and what DynamoDB Local cannot
express (encryption, point-in-time recovery, deletion protection).

Usage: check_table.py [--template PATH] [--table PATH]
Exit status: 0 when they match, 1 on any difference, 2 when a file cannot be read.
Needs PyYAML (infra/check.sh runs this with the cfn-lint virtualenv's Python, which has it).
"""

import argparse
import json
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the interpreter
    sys.stderr.write(
        "check_table.py: PyYAML is missing; run infra/check.sh, or `pip install pyyaml`\n"
    )
    sys.exit(2)

INFRA_DIR = Path(__file__).resolve().parent
TABLE_TYPE = "AWS::DynamoDB::Table"
# DynamoDB's default when BillingMode is absent, in both CreateTable and CloudFormation.
DEFAULT_BILLING_MODE = "PROVISIONED"


class CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that accepts CloudFormation's short-form tags (!Ref, !Sub, !GetAtt...).

    Each tag becomes the long form CloudFormation gives it ({"Ref": x}, {"Fn::Sub": x}), so
    the table's literal values can be read; no tag is evaluated.
    """


def _construct_cfn_tag(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # !GetAtt Resource.Attribute is short for Fn::GetAtt: [Resource, Attribute].
        value = value.split(".", 1)
    return {"Fn::" + tag_suffix: value}


CloudFormationLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CloudFormationLoader)  # noqa: S506 - safe loader subclass


def find_table(template):
    """Returns (logical id, properties) of the template's only DynamoDB table."""
    resources = template.get("Resources") or {}
    tables = [
        (name, resource.get("Properties") or {})
        for name, resource in resources.items()
        if isinstance(resource, dict) and resource.get("Type") == TABLE_TYPE
    ]
    if len(tables) != 1:
        names = ", ".join(name for name, _ in tables) or "none"
        raise ValueError(f"expected exactly one {TABLE_TYPE} in the template, found {names}")
    return tables[0]


def pairs(items, key_field, value_field, where):
    """Turns [{AttributeName: a, X: b}, ...] into {a: b}, reporting duplicates as differences."""
    result, problems = {}, []
    for item in items or []:
        if not isinstance(item, dict) or key_field not in item:
            problems.append(f"{where}: malformed entry {item!r}")
            continue
        name = item[key_field]
        if name in result:
            problems.append(f"{where}: attribute {name!r} listed twice")
        result[name] = item.get(value_field)
    return result, problems


def compare_pairs(label, expected, actual):
    lines = []
    for name in sorted(set(expected) | set(actual), key=str):
        if name not in actual:
            lines.append(f"{label}: {name!r} is {expected[name]!r} in table.json but missing from the template")
        elif name not in expected:
            lines.append(f"{label}: {name!r} is {actual[name]!r} in the template but missing from table.json")
        elif expected[name] != actual[name]:
            lines.append(
                f"{label}: {name!r} is {expected[name]!r} in table.json but {actual[name]!r} in the template"
            )
    return lines


def differences(table_json, props):
    """Every difference between table.json and the template table's properties, one line each."""
    lines = []

    exp_attrs, p1 = pairs(table_json.get("AttributeDefinitions"), "AttributeName", "AttributeType", "table.json AttributeDefinitions")
    act_attrs, p2 = pairs(props.get("AttributeDefinitions"), "AttributeName", "AttributeType", "template AttributeDefinitions")
    exp_keys, p3 = pairs(table_json.get("KeySchema"), "AttributeName", "KeyType", "table.json KeySchema")
    act_keys, p4 = pairs(props.get("KeySchema"), "AttributeName", "KeyType", "template KeySchema")
    lines += p1 + p2 + p3 + p4
    lines += compare_pairs("AttributeDefinitions", exp_attrs, act_attrs)
    lines += compare_pairs("KeySchema", exp_keys, act_keys)

    exp_mode = table_json.get("BillingMode", DEFAULT_BILLING_MODE)
    act_mode = props.get("BillingMode", DEFAULT_BILLING_MODE)
    if exp_mode != act_mode:
        lines.append(f"BillingMode: {exp_mode!r} in table.json but {act_mode!r} in the template")

    exp_ttl = table_json.get("TimeToLiveAttribute")
    ttl_spec = props.get("TimeToLiveSpecification") or {}
    act_ttl = ttl_spec.get("AttributeName")
    enabled = ttl_spec.get("Enabled") in (True, "true", "True")
    if not ttl_spec:
        act_desc = "absent"
    elif not enabled:
        act_desc = f"{act_ttl!r} (disabled)"
    else:
        act_desc = repr(act_ttl)
    if exp_ttl != (act_ttl if enabled else None):
        lines.append(f"TTL attribute: {exp_ttl!r} in table.json but {act_desc} in the template")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=INFRA_DIR / "template.yaml", type=Path)
    parser.add_argument("--table", default=INFRA_DIR / "table.json", type=Path)
    args = parser.parse_args(argv)

    try:
        with open(args.table, encoding="utf-8") as f:
            table_json = json.load(f)
        table_name, props = find_table(load_template(args.template))
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"check_table: cannot compare: {err}", file=sys.stderr)
        return 2

    lines = differences(table_json, props)
    for line in lines:
        print(f"check_table: {args.template.name} {table_name} differs from {args.table.name}: {line}")
    if lines:
        print(f"check_table: {len(lines)} difference(s)")
        return 1
    print(f"check_table: {args.template.name} {table_name} matches {args.table.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
