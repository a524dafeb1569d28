"""The served OpenAPI document says what this deployment accepts, model by model.

The document FastAPI builds from the request bodies is the contract of every deployment
(``docs/reference/openapi.json``); whether a schema-valid body is answered also depends on what
is loaded: which bundles a route serves (``model`` must be named when several serve it and none
is the route's own), each bundle's entity types (``labels``, ``min_score``), whether its runtime
reads a blank text, its character limit, its sequence heads (``head``), and whether a redaction
hash key is configured. Once the models are loaded, ``/openapi.json`` adds exactly these rules to
the model routes' request bodies (docs/api.md, "Request limits"), so a client or a fuzzer that
follows the document gets no 422 for a body it says is valid, and the bodies it says are invalid
get a 4xx. Before that (and for ``python -m docs_gen``) the contract alone is served.

Per model, the rules are one branch of an ``anyOf``: ``model`` equal to that bundle, or absent /
null for the bundle that answers unnamed, with its limits on ``text``, ``texts``, ``words``,
``labels``, ``min_score`` and ``head``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from families.ner.options import entity_types
from service.api.parse import alone_model, intent_model, ner_model
from service.errors import ServiceError
from service.protocols.v2.tensors import CLASSIFIER_OUTPUTS, INPUT, MAX_TOP_K, NER_OUTPUTS
from service.registry import LoadedModel, ModelRegistry
from service.runtime.family import SequenceHeads
from service.schemas import NOT_BLANK

Schema = dict[str, Any]

# Model routes: the registry's route key of the bundles named by ``model``.
ROUTES = {
    "/v1/entities": "ner",
    "/v1/redact": "ner",
    "/v1/classify": "classify",
    "/v1/postures": "postures",
    "/v1/parse": "parse",
}
# The Open Inference Protocol's infer routes: what a body may hold depends on the model in the
# path, so the deployment's document lists one path per loaded model instead of the template.
V2_INFER = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")


def describe_deployment(app: FastAPI, registry: ModelRegistry) -> None:
    """Serve the deployment's rules in ``/openapi.json`` once ``registry`` is ready."""
    build: Callable[[], Schema] = app.openapi
    served: dict[tuple[tuple[str, str], ...], Schema] = {}

    def openapi() -> Schema:
        contract = build()
        if not registry.ready:
            return contract
        # rebuilt when a version is loaded, fails or goes (hot loads, docs/operating/versions.md)
        key = tuple(sorted((m.ref, m.state) for m in registry.all_versions()))
        if key not in served:
            served.clear()
            served[key] = deployment_document(copy.deepcopy(contract), registry)
        return served[key]

    app.openapi = openapi  # type: ignore[method-assign]


def deployment_document(document: Schema, registry: ModelRegistry) -> Schema:
    """``document`` (the contract) with the loaded models' rules on every model route."""
    components = document["components"]["schemas"]
    bodies = {path: _body_ref(document, path) for path in ROUTES if path in document["paths"]}
    if len(set(bodies.values())) != len(bodies):
        raise ValueError(f"model routes share a request body: {bodies}")
    for path, ref in bodies.items():
        models, default = _served(registry, ROUTES[path]), _default(registry, path)
        if models or default:  # /v1/parse may be answered by a pair it cannot be named by
            pinned = _pinned(registry, ROUTES[path])
            _add_rules(components[ref], models, pinned, default, registry)
    for template in V2_INFER:
        if template in document["paths"]:
            _v2_infer_paths(document["paths"], template, registry)
    return document


def _body_ref(document: Schema, path: str) -> str:
    ref: str = document["paths"][path]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["$ref"]
    return ref.rsplit("/", 1)[1]


def _served(registry: ModelRegistry, route: str) -> list[LoadedModel]:
    tasks = registry.route_tasks.get(route, ())
    found = [m for m in registry.models.values() if m.manifest.task in tasks]
    return sorted((m for m in found if m.runtime is not None), key=lambda m: m.name)


def _pinned(registry: ModelRegistry, route: str) -> list[LoadedModel]:
    """Every ready version ``route`` serves: each may be pinned as ``name@version``."""
    tasks = registry.route_tasks.get(route, ())
    return [
        m
        for m in registry.all_versions()
        if m.manifest.task in tasks and m.state == "ready" and m.runtime is not None
    ]


def _default(registry: ModelRegistry, path: str) -> list[LoadedModel] | None:
    """The model(s) that answer a body without ``model`` (None: it must be named)."""
    try:
        if path == "/v1/parse":
            alone = alone_model(registry, None)
            if alone is not None:
                return [alone]
            return [intent_model(registry), ner_model(registry)]
        return [registry.get(ROUTES[path], None)]
    except ServiceError:
        return None


def _add_rules(
    body: Schema,
    models: list[LoadedModel],
    pinned: list[LoadedModel],
    default: list[LoadedModel] | None,
    registry: ModelRegistry,
) -> None:
    properties = body["properties"]
    names = [m.name for m in models] + [m.ref for m in pinned]
    named: Schema = {"type": "string", "enum": names}
    # no names (/v1/parse with no bundle of its own): model stays any string, a 404
    if names and default is None:
        properties["model"] = {**_described(properties["model"]), **named}
        body.setdefault("required", []).append("model")
        for example in body.get("examples", []):
            example.setdefault("model", names[0])
    elif names:
        properties["model"] = {
            **_described(properties["model"]),
            "anyOf": [named, {"type": "null"}],
        }
    if "mode" in properties and registry.settings.redact_key() is None:
        properties["mode"]["enum"] = [m for m in properties["mode"]["enum"] if m != "hash"]
    for name in ("texts", "words"):
        if name in properties:
            properties[name]["anyOf"][0]["maxItems"] = registry.settings.max_texts
    branches = [
        {"required": ["model"], "properties": {"model": {"const": m.name}, **_rules(body, [m])}}
        for m in models
    ] + [
        {"required": ["model"], "properties": {"model": {"const": m.ref}, **_rules(body, [m])}}
        for m in pinned
    ]
    if default is not None:
        branches.append({"properties": {"model": {"type": "null"}, **_rules(body, default)}})
    body.setdefault("allOf", []).append({"anyOf": branches})


def _described(spec: Schema) -> Schema:
    return {k: v for k, v in spec.items() if k in ("title", "description")}


def _rules(body: Schema, answering: list[LoadedModel]) -> Schema:
    """The rules on ``body``'s properties when ``answering`` (one model, or /v1/parse's pair)
    reads it."""
    properties = body["properties"]
    runtimes = [m.runtime for m in answering if m.runtime is not None]
    text: Schema = {"maxLength": min(r.max_chars for r in runtimes)}
    if not all(r.allow_blank for r in runtimes):
        text["pattern"] = NOT_BLANK
    rules: Schema = {"text": text, "texts": {"items": text}}
    if "pattern" in text and "words" in properties:
        rules["words"] = {"items": {"minItems": 1}}  # no words: a blank text
    if "labels" in properties:
        types = entity_types(answering[-1].manifest.labels)  # the pair's NER model comes last
        rules["labels"] = {"items": {"enum": types}}
        rules["min_score"] = {"propertyNames": {"enum": types}}
    if "head" in properties:
        runtime = answering[0].runtime
        heads: list[str | None] = (
            list(runtime.head_kinds()) if isinstance(runtime, SequenceHeads) else []
        )
        rules["head"] = {"enum": [*heads, None]}
    return rules


def _v2_infer_paths(paths: Schema, template: str, registry: ModelRegistry) -> None:
    """``template`` replaced by one path per loaded model, each with that model's exact body."""
    operation = paths.pop(template)["post"]
    models = [m for m in registry.models.values() if m.runtime is not None]
    for model in sorted(models, key=lambda m: m.name):
        mine = copy.deepcopy(operation)
        mine["operationId"] = f"{operation['operationId']}_{model.name}"
        mine["parameters"] = [p for p in mine.get("parameters", []) if p["name"] != "name"]
        for parameter in mine["parameters"]:
            if parameter["name"] == "version":  # another version is a 404; "" is none given
                group = registry.groups.get(model.name)
                versions = group.ready() if group is not None else [model.manifest.version]
                if parameter["in"] == "query":
                    versions.append("")
                parameter["schema"] = {"type": "string", "enum": versions}
        schema = _v2_body(model, registry)
        mine["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
        paths[template.replace("{name}", model.name)] = {"post": mine}


def _v2_body(model: LoadedModel, registry: ModelRegistry) -> Schema:
    """An inference request ``model`` answers (docs/api-v2.md): one BYTES input ``text`` of
    shape [n], its data n texts within the limits; ``top_k`` for classifiers only; known
    output names. Other fields and parameters are ignored, so they stay open."""
    runtime = model.runtime
    assert runtime is not None
    text: Schema = {"type": "string", "maxLength": runtime.max_chars}
    if not runtime.allow_blank:
        text["pattern"] = NOT_BLANK
    texts = [
        {
            "properties": {
                "shape": {"const": [n]},
                "data": {"type": "array", "items": text, "minItems": n, "maxItems": n},
            }
        }
        for n in range(1, registry.settings.max_texts + 1)
    ]
    tensor: Schema = {
        "type": "object",
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"const": INPUT},
            "datatype": {"const": "BYTES"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "data": {"type": "array"},
            "parameters": {
                "anyOf": [
                    {"type": "object", "properties": {"binary_data_size": {"type": "null"}}},
                    {"type": "null"},
                ]
            },
        },
        "anyOf": texts,
    }
    ner = registry.by_task[model.manifest.task].batch.items_key == "entities"
    top_k: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K}
    optional_object: Schema = {"anyOf": [{"type": "object"}, {"type": "null"}]}
    named: Schema = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"enum": list(NER_OUTPUTS if ner else CLASSIFIER_OUTPUTS)},
            "parameters": optional_object,
        },
    }
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "parameters": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {
                            "top_k": {"type": "null"}
                            if ner
                            else {"anyOf": [top_k, {"type": "null"}]}
                        },
                    },
                    {"type": "null"},
                ]
            },
            "inputs": {"type": "array", "items": tensor, "minItems": 1, "maxItems": 1},
            "outputs": {"anyOf": [{"type": "array", "items": named}, {"type": "null"}]},
        },
    }
