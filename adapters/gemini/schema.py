"""OpenAI-style JSON Schema → the OpenAPI subset Gemini's `parameters` accepts.

Gemini rejects unknown keys with a 400 ("Unknown name … Cannot find field"), so a tool schema that is fine
for OpenAI must be narrowed: `$ref`s inlined, nullable unions folded into `nullable`, `const` turned into a
one-value `enum`, `oneOf`/`allOf` into `anyOf`, enum values made strings, and keys Gemini does not know
removed. What is removed only loosens validation (e.g. `additionalProperties`, `pattern` formats); the
fields, types and required lists the model sees are kept. Reference: shared/reference/gemini.md §6.
"""

from __future__ import annotations

from typing import Any

JSON = Any
KEEP = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "anyOf",
    "propertyOrdering",
    "default",
    "example",
}
STRING_FORMATS = {"enum", "date-time"}


def narrow(schema: JSON) -> JSON:
    """A schema Gemini's `parameters` accepts; `None` when there is nothing to declare."""
    if not isinstance(schema, dict):
        return None
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    result = _narrow(schema, definitions, ())
    if result.get("type") == "object" and not result.get("properties"):
        return None  # Gemini wants no `parameters` at all for a function without arguments
    return result


def _narrow(schema: JSON, definitions: dict[str, JSON], seen: tuple[str, ...]) -> dict[str, JSON]:
    if not isinstance(schema, dict):
        return {"type": "string"}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or name not in definitions:
            return {"type": "object"}  # recursive or unresolvable: cut here
        merged = {**definitions[name], **{k: v for k, v in schema.items() if k != "$ref"}}
        return _narrow(merged, definitions, (*seen, name))
    schema = _fold_unions(schema)
    out: dict[str, JSON] = {}
    for key, value in schema.items():
        if key not in KEEP:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _narrow(sub, definitions, seen) for name, sub in value.items()}
        elif key == "items":
            out[key] = _narrow(value, definitions, seen) if value else {"type": "string"}
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [_narrow(sub, definitions, seen) for sub in value]
        elif key == "enum" and isinstance(value, list):
            out[key] = [str(v) for v in value if v is not None and str(v) != ""]
        elif key == "format":
            if value in STRING_FORMATS:
                out[key] = value
        else:
            out[key] = value
    if "anyOf" in out:
        return {"anyOf": out["anyOf"], **({"nullable": True} if out.get("nullable") else {})}
    if "enum" in out:
        out["type"] = "string"  # Gemini enums are strings only; the values were stringified above
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {"type": "string"}
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    return out


def _fold_unions(schema: dict[str, JSON]) -> dict[str, JSON]:
    """`type: [X, "null"]`, `anyOf: [X, {type: null}]`, `oneOf`/`allOf`, `const` → Gemini's forms."""
    schema = dict(schema)
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    types = schema.get("type")
    if isinstance(types, list):
        concrete = [t for t in types if t != "null"]
        if len(concrete) < len(types):
            schema["nullable"] = True
        schema["type"] = concrete[0] if len(concrete) == 1 else None
        if len(concrete) > 1:
            schema["anyOf"] = [{"type": t} for t in concrete]
        if schema["type"] is None:
            del schema["type"]
    for key in ("oneOf", "allOf"):
        if key in schema:
            schema["anyOf"] = schema.pop(key)
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        concrete = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        if len(concrete) < len(branches):
            schema["nullable"] = True
        if len(concrete) == 1 and isinstance(concrete[0], dict):
            del schema["anyOf"]
            schema = {**concrete[0], **{k: v for k, v in schema.items() if k != "type"}}
        else:
            schema["anyOf"] = concrete
    return schema
