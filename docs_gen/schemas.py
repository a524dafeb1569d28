"""docs/reference/bundle-schema.{json,md} (the manifest, from pydantic) and openapi.json."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from docs_gen.markdown import HEADER, code, table


def bundle_schema() -> dict[str, Any]:
    from service.bundle import manifest_adapter
    from service.families import SERVING_FAMILIES

    adapter = manifest_adapter(f.manifest for f in SERVING_FAMILIES)
    schema: dict[str, Any] = adapter.json_schema(mode="validation")
    schema["title"] = "bundle.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def bundle_json() -> str:
    return json.dumps(bundle_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def bundle_page() -> str:
    schema = bundle_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    parts = [
        HEADER.format(source="the registered families' manifests (service/families.py)"),
        "# Bundle manifest (`bundle.json`)\n",
        "Every bundle directory holds a `bundle.json` validated by these pydantic models when the "
        "service starts (unknown fields are refused). `task` selects the manifest kind: the first "
        "sections are the manifests, the rest the objects they hold. The "
        "machine-readable JSON schema: [bundle-schema.json](bundle-schema.json).\n",
    ]
    roots = [
        str(ref["$ref"]).rsplit("/", 1)[-1]
        for key in ("oneOf", "anyOf")
        for ref in schema.get(key, [])
        if "$ref" in ref
    ]
    for name in [*roots, *sorted(set(defs) - set(roots))]:
        model = defs[name]
        props: dict[str, Any] = model.get("properties", {})
        if not props:
            continue
        required = set(model.get("required", []))
        rows = [
            [
                code(prop),
                _type(spec),
                "yes" if prop in required else code(json.dumps(spec.get("default"))),
                spec.get("description", ""),
            ]
            for prop, spec in props.items()
        ]
        parts.append(f"## {name}\n")
        if model.get("description"):
            parts.append(" ".join(str(model["description"]).split()) + "\n")
        parts.append(table(["field", "type", "required / default", "meaning"], rows))
    return "\n".join(parts)


def _type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    if "const" in spec:
        return code(json.dumps(spec["const"]))
    if "enum" in spec:
        return " \\| ".join(code(json.dumps(v)) for v in spec["enum"])
    for key in ("anyOf", "oneOf"):
        if key in spec:
            return " or ".join(_type(s) for s in spec[key])
    kind = spec.get("type", "any")
    if kind == "array" and "items" in spec:
        return f"array of {_type(spec['items'])}"
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"object of {_type(spec['additionalProperties'])}"
    return str(kind)


def openapi_json() -> str:
    from pydantic import SecretStr

    from service.app import create_app
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as empty:
        # model_construct: defaults only, whatever INFER_* or .env this process sees; an admin
        # key so that the admin API (off without one) is in the reference too.
        settings = Settings.model_construct(
            bundles_dir=Path(empty), admin_keys=[SecretStr("reference-only")]
        )
        app = create_app(settings)
        document = app.openapi()
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
