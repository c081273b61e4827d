#!/usr/bin/env python3
"""Offline checks of the Terraform module in infra/ (run by scripts/check-deploy.sh).

`terraform validate` needs the hashicorp/aws provider, which cannot be downloaded here, so this
script checks what validate would, against the provider's schema taken from another source: the
jsii assembly of the PyPI package cdktf-cdktf-provider-aws 19.x, generated from hashicorp/aws 5.x
(19.65.1 from 5.99.1). For every resource and data block of the module and its example:

  - each argument and nested block exists in the provider schema, blocks are written as blocks and
    arguments as arguments, and every required argument is set;
  - each reference (var.*, local.*, aws_*.*, data.*.*, module.*) points at something declared, and
    each attribute read from a resource (aws_x.y.attr) exists on that resource type;
  - each variable declared is used, each module argument of the example is a variable of the module;

and between infra/ and template.yaml (the SAM stack):

  - the same parameters/variables (CamelCase there, snake_case here) with equal defaults, the same
    outputs, the same BERTH_* environment variables, and the same IAM statements (Sid and actions)
    per function role.

It also prints the Terraform functions the module calls, one per line after "FUNCTIONS:", so the
shell script can ask Terraform 1.0 itself whether it knows them.

Usage: offline_check.py --schema provider-aws.jsii --module infra --example infra/examples/basic
       --template template.yaml [--self-test]
"""

import argparse
import glob
import json
import os
import re
import sys

import hcl2
from samtranslator.yaml_helper import yaml_parse

META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
TERRAFORM_ONLY_VARIABLES = {"name", "lambda_zip_dir", "tags"}
# (SAM role logical id, Terraform aws_iam_policy_document name)
ROLE_PAIRS = [("ApiRole", "api"), ("ProjectorRole", "projector"), ("JanitorRole", "janitor")]
PREFIX = "@cdktf/provider-aws."
ANCHOR = re.compile(r"/docs/(?:resources|data-sources)/\w+#(\w+)")
REPRESENTS = re.compile(r"/docs/(resources|data-sources)/\w+ (aws_\w+)\}")


def snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def unquote(s):
    return s[1:-1] if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"' else s


# ------------------------------------------------------------------------------ provider schema


class Schema:
    """Resource and data source types of the provider, from the jsii assembly."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.types = json.load(f)["types"]
        self.version = None
        self.kinds = {"resource": {}, "data": {}}
        for fqn, t in self.types.items():
            if t.get("kind") != "class" or not fqn.startswith(PREFIX):
                continue
            m = REPRESENTS.search(t.get("docs", {}).get("summary", ""))
            if not m:
                continue
            kind = "resource" if m.group(1) == "resources" else "data"
            self.kinds[kind][m.group(2)] = fqn
            if self.version is None:
                v = re.search(r"hashicorp/aws/([0-9.]+)/", t["docs"]["summary"])
                self.version = v.group(1) if v else "?"

    def fields(self, fqn):
        """{snake name: (optional, nested struct fqn or None, is_block)} of a config struct."""
        out = {}
        t = self.types.get(fqn)
        if t is None:
            return out
        for parent in t.get("interfaces", []):
            out.update(self.fields(parent))
        for p in t.get("properties", []):
            docs = p.get("docs", {})
            text = docs.get("summary", "") + " " + docs.get("remarks", "")
            m = ANCHOR.search(text)
            name = m.group(1) if m else snake(p["name"])
            nested = self._nested(p.get("type", {}))
            is_block = nested is not None and docs.get("summary", "").endswith("block.")
            out[name] = (bool(p.get("optional")), nested if is_block else None, is_block)
        return out

    def _nested(self, ty):
        text = json.dumps(ty)
        m = re.search(r'"fqn": "(' + re.escape(PREFIX) + r'[^"]+)"', text)
        return m.group(1) if m else None

    def config(self, kind, tf_type):
        cls = self.kinds[kind].get(tf_type)
        return None if cls is None else cls + "Config"

    def attributes(self, kind, tf_type):
        """Everything readable as <type>.<name>.<attr>: arguments and computed attributes."""
        cls = self.kinds[kind].get(tf_type)
        if cls is None:
            return set()
        names = set(self.fields(cls + "Config"))
        for p in self.types[cls].get("properties", []):
            if not p.get("static") and not p["name"].endswith("Input"):
                names.add(snake(p["name"]))
        return names


# ------------------------------------------------------------------------------ the module


class Module:
    def __init__(self, directory):
        self.directory = directory
        self.variables, self.locals, self.outputs, self.modules = {}, {}, {}, {}
        self.blocks = {"resource": {}, "data": {}}
        self.files = sorted(glob.glob(os.path.join(directory, "*.tf")))
        for path in self.files:
            with open(path, encoding="utf-8") as f:
                doc = hcl2.load(f)
            for v in doc.get("variable", []):
                for name, body in v.items():
                    self.variables[unquote(name)] = (body, path)
            for block in doc.get("locals", []):
                for name, value in block.items():
                    if not name.startswith("__"):
                        self.locals[name] = (value, path)
            for o in doc.get("output", []):
                for name, body in o.items():
                    self.outputs[unquote(name)] = (body, path)
            for m in doc.get("module", []):
                for name, body in m.items():
                    self.modules[unquote(name)] = (body, path)
            for kind in ("resource", "data"):
                for r in doc.get(kind, []):
                    for tf_type, named in r.items():
                        for name, body in named.items():
                            self.blocks[kind][(unquote(tf_type), unquote(name))] = (body, path)


def strings(value):
    """Every string inside a parsed HCL value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k != "__comments__":
                yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def code_of(s):
    """The expression parts of a parsed HCL value: template text and string literals blanked."""
    out, stack, i = [], ["template"], 0
    while i < len(s):
        c, top = s[i], stack[-1]
        if top in ("template", "string"):
            if c == "\\" and top == "string":
                i += 2
                continue
            if s.startswith("${", i):
                stack.append(0)
                out.append(" ")
                i += 2
                continue
            if c == '"' and top == "string":
                stack.pop()
            out.append(" ")
        else:  # an expression; the int counts open braces inside it
            if c == '"':
                stack.append("string")
                out.append(" ")
            elif c == "{":
                stack[-1] += 1
                out.append(c)
            elif c == "}":
                if top == 0:
                    stack.pop()
                    out.append(" ")
                else:
                    stack[-1] -= 1
                    out.append(c)
            else:
                out.append(c)
        i += 1
    return "".join(out)


REF_PATTERNS = {
    "var": re.compile(r"(?<![\w.])var\.(\w+)"),
    "local": re.compile(r"(?<![\w.])local\.(\w+)"),
    "module": re.compile(r"(?<![\w.])module\.(\w+)"),
    "data": re.compile(r"(?<![\w.])data\.(aws_\w+)\.(\w+)(?:\[[^\]]*\])?(?:\.(\w+))?"),
    "resource": re.compile(r"(?<![\w.])(aws_\w+)\.(\w+)(?:\[[^\]]*\])?(?:\.(\w+))?"),
}
CALL = re.compile(r"(?<![\w.])([a-z][a-z0-9_]*)\s*\(")


# ------------------------------------------------------------------------------ checks


class Checker:
    def __init__(self, schema):
        self.schema = schema
        self.errors = []
        self.functions = set()

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    def body(self, where, fqn, body):
        fields = self.schema.fields(fqn)
        for key, value in body.items():
            if key.startswith("__") or key in META_ARGUMENTS:
                continue
            if key not in fields:
                self.error(where, f"unknown argument or block {key!r}")
                continue
            _optional, nested, is_block = fields[key]
            written_as_block = isinstance(value, list) and all(
                isinstance(v, dict) and v.get("__is_block__") for v in value
            ) and value != []
            if is_block and not written_as_block:
                self.error(where, f"{key!r} is a block: write `{key} {{ ... }}`")
            elif written_as_block and not is_block:
                self.error(where, f"{key!r} is an argument: write `{key} = ...`")
            elif is_block:
                for i, v in enumerate(value):
                    self.body(f"{where}.{key}[{i}]", nested, v)
        for name, (optional, _nested, _is_block) in fields.items():
            if not optional and name not in body:
                self.error(where, f"required argument {name!r} is missing")

    def module(self, mod, role):
        for kind, blocks in mod.blocks.items():
            for (tf_type, name), (body, path) in blocks.items():
                where = f"{os.path.relpath(path)}: {'data.' if kind == 'data' else ''}{tf_type}.{name}"
                fqn = self.schema.config(kind, tf_type)
                if fqn is None:
                    self.error(where, f"hashicorp/aws {self.schema.version} has no {kind} type {tf_type!r}")
                    continue
                self.body(where, fqn, body)
        used_vars = set()
        # A variable's type constraint (map(string), object(...)) is not a function call.
        everything = [(path, {k: v for k, v in body.items() if k != "type"}) for body, path in mod.variables.values()]
        everything += [
            (path, value) for table in (mod.locals, mod.outputs, mod.modules) for value, path in table.values()
        ]
        everything += [(path, body) for blocks in mod.blocks.values() for body, path in blocks.values()]
        for path, value in everything:
            for s in strings(value):
                code = code_of(s)
                self.functions.update(CALL.findall(code))
                self.references(os.path.relpath(path), code, mod, used_vars)
        for name, (_body, path) in mod.variables.items():
            if name not in used_vars:
                self.error(os.path.relpath(path), f"variable {name!r} is declared but never used")
        if role == "example":
            return
        for name, (body, path) in mod.variables.items():
            if "type" not in body or "description" not in body:
                self.error(os.path.relpath(path), f"variable {name!r} needs a type and a description")
        for name, (body, path) in mod.outputs.items():
            if "description" not in body:
                self.error(os.path.relpath(path), f"output {name!r} needs a description")

    def references(self, where, code, mod, used_vars):
        for name in REF_PATTERNS["var"].findall(code):
            used_vars.add(name)
            if name not in mod.variables:
                self.error(where, f"var.{name} is not declared")
        for name in REF_PATTERNS["local"].findall(code):
            if name not in mod.locals:
                self.error(where, f"local.{name} is not declared")
        for name in REF_PATTERNS["module"].findall(code):
            if name not in mod.modules:
                self.error(where, f"module.{name} is not declared")
        for tf_type, name, attr in REF_PATTERNS["data"].findall(code):
            self.reference(where, mod, "data", tf_type, name, attr)
        for tf_type, name, attr in REF_PATTERNS["resource"].findall(re.sub(r"data\.aws_\w+", " ", code)):
            self.reference(where, mod, "resource", tf_type, name, attr)

    def reference(self, where, mod, kind, tf_type, name, attr):
        label = f"{'data.' if kind == 'data' else ''}{tf_type}.{name}"
        if (tf_type, name) not in mod.blocks[kind]:
            self.error(where, f"{label} is not declared")
        elif attr and attr not in self.schema.attributes(kind, tf_type):
            self.error(where, f"{label}.{attr}: {tf_type} has no attribute {attr!r}")

    def example(self, example, mod):
        for name, (body, path) in example.modules.items():
            for key in body:
                if key.startswith("__") or key in {"source", "version", "providers", "count", "for_each", "depends_on"}:
                    continue
                if key not in mod.variables:
                    self.error(os.path.relpath(path), f"module.{name}: the module has no variable {key!r}")
        for body, path in example.outputs.values():
            for s in strings(body):
                for output in re.findall(r"(?<![\w.])module\.\w+\.(\w+)", code_of(s)):
                    if output not in mod.outputs:
                        self.error(os.path.relpath(path), f"the module has no output {output!r}")


def statements_of_template(resource):
    out = {}
    for policy in resource["Properties"]["Policies"]:
        for st in policy["PolicyDocument"]["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            out[st["Sid"]] = sorted(actions)
    return out


def statements_of_module(body):
    out = {}
    for st in body.get("statement", []):
        out[unquote(st.get("sid", '""'))] = sorted(unquote(a) for a in st.get("actions", []))
    return out


def parity(checker, mod, template_path):
    with open(template_path, encoding="utf-8") as f:
        text = f.read()
    template = yaml_parse(text)
    where = "template.yaml <-> infra"
    params = {snake(k): v for k, v in template.get("Parameters", {}).items()}
    variables = {k: body for k, (body, _p) in mod.variables.items() if k not in TERRAFORM_ONLY_VARIABLES}
    for name in sorted(set(params) - set(variables)):
        checker.error(where, f"parameter {name} has no Terraform variable")
    for name in sorted(set(variables) - set(params)):
        checker.error(where, f"variable {name} has no SAM parameter")
    for name in sorted(set(params) & set(variables)):
        sam_default = str(params[name].get("Default", "")).lower()
        tf_default = str(unquote(variables[name].get("default", '""'))).lower()
        if sam_default != tf_default:
            checker.error(where, f"{name}: default {sam_default!r} in SAM, {tf_default!r} in Terraform")
    outputs = {snake(k) for k in template.get("Outputs", {})}
    for name in sorted(outputs ^ set(mod.outputs)):
        checker.error(where, f"output {name} is in only one of the two")
    tf_text = "".join(open(p, encoding="utf-8").read() for p in mod.files)
    env_sam = set(re.findall(r"\b(BERTH_[A-Z_]+|RUST_LOG)\s*:", text))
    env_tf = set(re.findall(r"\b(BERTH_[A-Z_]+|RUST_LOG)\s*=", tf_text))
    for name in sorted(env_sam ^ env_tf):
        checker.error(where, f"environment variable {name} is set in only one of the two")
    for sam_role, tf_doc in ROLE_PAIRS:
        sam = statements_of_template(template["Resources"][sam_role])
        body = mod.blocks["data"].get(("aws_iam_policy_document", tf_doc), ({}, ""))[0]
        tf = statements_of_module(body)
        if sam != tf:
            checker.error(where, f"IAM statements differ for {sam_role}: SAM {sam} vs Terraform {tf}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", required=True)
    ap.add_argument("--module", required=True)
    ap.add_argument("--example", action="append", default=[])
    ap.add_argument("--template", required=True)
    ap.add_argument("--self-test", action="store_true", help="also check that seeded mistakes are caught")
    args = ap.parse_args()

    schema = Schema(args.schema)
    mod = Module(args.module)
    checker = Checker(schema)
    checker.module(mod, "module")
    for e in args.example:
        example = Module(e)
        checker.module(example, "example")
        checker.example(example, mod)
    parity(checker, mod, args.template)

    counts = {k: len(v) for k, v in mod.blocks.items()}
    print(
        f"checked {counts['resource']} resources and {counts['data']} data sources against "
        f"hashicorp/aws {schema.version}; {len(mod.variables)} variables, {len(mod.outputs)} outputs"
    )
    if args.self_test:
        self_test(schema, mod)
    print("FUNCTIONS: " + " ".join(sorted(checker.functions)))
    for e in checker.errors:
        print(f"error: {e}", file=sys.stderr)
    return 1 if checker.errors else 0


def self_test(schema, mod):
    """Seeds one mistake of each kind into a copy of the parsed module; each must be reported."""
    import copy

    key = ("aws_lambda_function", "api")
    seeds = {
        "unknown argument": lambda m: m.blocks["resource"][key][0].__setitem__("memory_sise", 1),
        "missing required": lambda m: m.blocks["resource"][key][0].pop("function_name"),
        "block as argument": lambda m: m.blocks["resource"][key][0].__setitem__("environment", "${{}}"),
        "unknown attribute": lambda m: m.outputs.__setitem__("x", ({"value": "${aws_lambda_function.api.urn}"}, "x")),
        "undeclared variable": lambda m: m.outputs.__setitem__("x", ({"value": "${var.nope}"}, "x")),
    }
    for what, seed in seeds.items():
        m = copy.deepcopy(mod)
        seed(m)
        c = Checker(schema)
        c.module(m, "module")
        if not c.errors:
            print(f"self-test: a seeded {what} was not caught", file=sys.stderr)
            sys.exit(1)
    print(f"self-test: {len(seeds)} seeded mistakes caught")


if __name__ == "__main__":
    sys.exit(main())
