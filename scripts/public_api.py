#!/usr/bin/env python3
"""Print the crate's public surface, one item per line, from rustdoc's JSON output.

Usage: public_api.py DOC_JSON

Walks from the crate root through public modules and re-exports, so an item reachable at two
paths is listed twice. Each line holds the item's path and, for functions, its signature;
impls list their methods under the implementing type. The output is sorted, so a diff of two
runs shows exactly what changed.
"""

import json
import sys


def main():
    doc = json.load(open(sys.argv[1]))
    index = doc["index"]
    out = set()
    walk_module(index, index[str(doc["root"])], "syncws", out, set())
    for line in sorted(out):
        print(line)


def item(index, item_id):
    return index.get(str(item_id))


def kind(it):
    return next(iter(it["inner"]))


def walk_module(index, module, path, out, seen):
    key = (module["id"], path)
    if key in seen:
        return
    seen.add(key)
    for child_id in module["inner"]["module"]["items"]:
        child = item(index, child_id)
        if child is None or child.get("visibility") != "public":
            continue
        if kind(child) == "use":
            use = child["inner"]["use"]
            target = item(index, use["id"]) if use["id"] is not None else None
            if target is None:
                out.add(f"pub use {path}::{use['name']} = {use['source']}")
            elif use["is_glob"]:
                walk_module(index, target, path, out, seen)
            else:
                walk_item(index, target, f"{path}::{use['name']}", out, seen)
        else:
            walk_item(index, child, f"{path}::{child['name']}", out, seen)


def walk_item(index, it, path, out, seen):
    k = kind(it)
    inner = it["inner"][k]
    attrs = " ".join(render_attr(a) for a in it.get("attrs", []) if render_attr(a))
    prefix = f"{attrs} " if attrs else ""
    if k == "module":
        out.add(f"pub mod {path}")
        walk_module(index, it, path, out, seen)
    elif k == "function":
        out.add(f"{prefix}pub fn {path}{render_fn(inner)}")
    elif k in ("struct", "enum", "union"):
        out.add(f"{prefix}pub {k} {path}{render_generics(inner['generics'])}")
        if k == "struct":
            struct_kind = inner["kind"] if isinstance(inner["kind"], dict) else {}
            fields = struct_kind.get("plain", {}).get("fields", [])
            for field_id in fields:
                field = item(index, field_id)
                if field and field.get("visibility") == "public":
                    out.add(f"pub {path}::{field['name']}: {ty(field['inner']['struct_field'])}")
            tuple_fields = struct_kind.get("tuple")
            if tuple_fields is not None:
                shown = [ty(item(index, f)["inner"]["struct_field"]) if f is not None else "_"
                         for f in tuple_fields]
                out.add(f"pub struct {path}({', '.join(shown)})")
        if k == "enum":
            for variant_id in inner["variants"]:
                variant = item(index, variant_id)
                out.add(f"pub {path}::{variant['name']}{render_variant(index, variant)}")
        for impl_id in inner.get("impls", []):
            walk_impl(index, item(index, impl_id), path, out)
    elif k == "trait":
        out.add(f"{prefix}pub trait {path}{render_generics(inner['generics'])}")
        for member_id in inner["items"]:
            member = item(index, member_id)
            if member and kind(member) == "function":
                out.add(f"pub fn {path}::{member['name']}{render_fn(member['inner']['function'])}")
        for impl_id in inner.get("implementations", []):
            impl = item(index, impl_id)
            if impl:
                out.add(f"impl {path} for {ty(impl['inner']['impl']['for'])}")
    elif k == "constant":
        out.add(f"pub const {path}: {ty(inner['type'])}")
    elif k == "static":
        out.add(f"pub static {path}: {ty(inner['type'])}")
    elif k == "type_alias":
        out.add(f"pub type {path} = {ty(inner['type'])}")
    elif k == "macro":
        out.add(f"pub macro {path}!")
    else:
        out.add(f"pub {k} {path}")


def walk_impl(index, impl_item, type_path, out):
    if impl_item is None:
        return
    impl = impl_item["inner"]["impl"]
    if impl.get("blanket_impl") is not None:
        return
    generics = render_generics(impl["generics"])
    if impl["trait"] is not None:
        trait = path_of(impl["trait"])
        negative = "!" if impl.get("is_negative") else ""
        out.add(f"impl{generics} {negative}{trait} for {ty(impl['for'])}")
        return
    for member_id in impl["items"]:
        member = item(index, member_id)
        if member is None or member.get("visibility") != "public":
            continue
        name = member["name"]
        k = kind(member)
        if k == "function":
            for_type = ty(impl["for"])
            home = f" (in impl{generics} {for_type})" if generics or "<" in for_type else ""
            out.add(f"pub fn {type_path}::{name}{render_fn(member['inner']['function'])}{home}")
        elif k == "assoc_const" or k == "constant":
            const = member["inner"][k]
            out.add(f"pub const {type_path}::{name}: {ty(const['type'])}")


def render_attr(attr):
    if attr == "non_exhaustive" or attr == {"non_exhaustive": None}:
        return "#[non_exhaustive]"
    if isinstance(attr, str) and "non_exhaustive" in attr:
        return "#[non_exhaustive]"
    if isinstance(attr, dict) and "non_exhaustive" in attr:
        return "#[non_exhaustive]"
    if isinstance(attr, str) and attr.startswith("#[must_use"):
        return ""
    return ""


def render_variant(index, variant):
    kind_ = variant["inner"]["variant"]["kind"]
    if kind_ == "plain":
        return ""
    if "tuple" in kind_:
        fields = [ty(item(index, f)["inner"]["struct_field"]) if f is not None else "_"
                  for f in kind_["tuple"]]
        return f"({', '.join(fields)})"
    if "struct" in kind_:
        fields = []
        for f in kind_["struct"]["fields"]:
            field = item(index, f)
            fields.append(f"{field['name']}: {ty(field['inner']['struct_field'])}")
        return " { " + ", ".join(fields) + " }"
    return ""


def render_fn(function):
    sig = function["sig"]
    params = []
    for name, t in sig["inputs"]:
        if name == "self":
            params.append(render_self(t))
        else:
            params.append(f"{name}: {ty(t)}")
    output = f" -> {ty(sig['output'])}" if sig.get("output") is not None else ""
    generics = render_generics(function["generics"])
    where = render_where(function["generics"])
    const = "const " if function["header"].get("is_const") else ""
    return f"{generics}({', '.join(params)}){output}{where}" if not const else \
        f"{generics}({', '.join(params)}){output}{where} [const]"


def render_self(t):
    if t == {"generic": "Self"}:
        return "self"
    if "borrowed_ref" in t and t["borrowed_ref"]["type"] == {"generic": "Self"}:
        mut = "mut " if t["borrowed_ref"]["is_mutable"] else ""
        return f"&{mut}self"
    return f"self: {ty(t)}"


def render_generics(generics):
    shown = []
    for param in generics["params"]:
        k = param["kind"]
        if "lifetime" in k:
            shown.append(param["name"])
        elif "type" in k:
            if k["type"].get("is_synthetic"):
                continue
            bounds = " + ".join(render_bound(b) for b in k["type"]["bounds"])
            default = f" = {ty(k['type']['default'])}" if k["type"].get("default") else ""
            shown.append(f"{param['name']}: {bounds}{default}" if bounds
                         else f"{param['name']}{default}")
        elif "const" in k:
            shown.append(f"const {param['name']}: {ty(k['const']['type'])}")
    return f"<{', '.join(shown)}>" if shown else ""


def render_where(generics):
    preds = []
    for pred in generics["where_predicates"]:
        if "bound_predicate" in pred:
            bp = pred["bound_predicate"]
            bounds = " + ".join(render_bound(b) for b in bp["bounds"])
            preds.append(f"{ty(bp['type'])}: {bounds}")
    return f" where {', '.join(preds)}" if preds else ""


def render_bound(bound):
    if "trait_bound" in bound:
        modifier = "?" if bound["trait_bound"].get("modifier") == "maybe" else ""
        return modifier + path_of(bound["trait_bound"]["trait"])
    if "outlives" in bound:
        return bound["outlives"]
    return "?"


def path_of(p):
    name = p.get("path") or p.get("name") or "?"
    return name + render_args(p.get("args"))


def render_args(args):
    if not args:
        return ""
    if "angle_bracketed" in args:
        shown = []
        for a in args["angle_bracketed"]["args"]:
            if "type" in a:
                shown.append(ty(a["type"]))
            elif "lifetime" in a:
                shown.append(a["lifetime"])
            elif "const" in a:
                shown.append(str(a["const"].get("expr", "_")))
        for c in args["angle_bracketed"].get("constraints", []):
            binding = c.get("binding", {})
            if "equality" in binding:
                shown.append(f"{c['name']} = {ty(binding['equality'].get('type', {}))}")
            else:
                shown.append(f"{c['name']}: ..")
        return f"<{', '.join(shown)}>" if shown else ""
    if "parenthesized" in args:
        p = args["parenthesized"]
        out = f" -> {ty(p['output'])}" if p.get("output") else ""
        return f"({', '.join(ty(t) for t in p['inputs'])}){out}"
    return ""


def ty(t):
    if t is None:
        return "()"
    k = next(iter(t))
    v = t[k]
    if k == "resolved_path":
        return path_of(v)
    if k == "generic":
        return v
    if k == "primitive":
        return v
    if k == "borrowed_ref":
        life = f"{v['lifetime']} " if v.get("lifetime") else ""
        mut = "mut " if v["is_mutable"] else ""
        return f"&{life}{mut}{ty(v['type'])}"
    if k == "tuple":
        return f"({', '.join(ty(x) for x in v)})"
    if k == "slice":
        return f"[{ty(v)}]"
    if k == "array":
        return f"[{ty(v['type'])}; {v['len']}]"
    if k == "impl_trait":
        return "impl " + " + ".join(render_bound(b) for b in v)
    if k == "dyn_trait":
        return "dyn " + " + ".join(path_of(tr["trait"]) for tr in v["traits"])
    if k == "raw_pointer":
        return f"*{'mut' if v['is_mutable'] else 'const'} {ty(v['type'])}"
    if k == "qualified_path":
        return f"<{ty(v['self_type'])}>::{v['name']}"
    if k == "function_pointer":
        return "fn(..)"
    return k


if __name__ == "__main__":
    main()
