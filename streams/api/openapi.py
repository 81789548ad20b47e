"""`GET /openapi.json`: the OpenAPI 3.1 document of the public routes."""

from __future__ import annotations

from typing import Any

from faust import web

from streams.api.errors import HTTP_STATUS
from streams.app import app

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": sorted(HTTP_STATUS)},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
_JSON_OBJECT = {"content": {"application/json": {"schema": {"type": "object"}}}}
_JSON_ARRAY = {"content": {"application/json": {"schema": {"type": "array"}}}}


def _answers(ok: dict[str, str], *codes: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        status: {"description": text, **_JSON_OBJECT} for status, text in ok.items()
    }
    for code in codes:
        out[str(HTTP_STATUS[code])] = {
            "description": code,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


def _param(name: str, where: str = "path", kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": {"type": kind}}


_SUBMIT_ERRORS = (
    "invalid_json",
    "invalid_batch_format",
    "empty_parameter",
    "duplicate_item_id",
    "empty_batch",
    "too_many_items",
    "unauthorized",
    "tenant_not_allowed",
    "too_many_active_batches",
    "batch_conflict",
    "unavailable",
)
_LOOKUP_ERRORS = ("unauthorized", "not_found", "unavailable")

PATHS: dict[str, dict[str, Any]] = {
    "/v1/tenants/{tenant}/batches": {
        "post": {
            "summary": "Submit a batch (202), or wait up to `wait` seconds for its end (200)",
            "parameters": [_param("tenant"), _param("wait", "query", "number")],
            "requestBody": {"required": True, **_JSON_OBJECT},
            "responses": _answers(
                {"202": "accepted", "200": "ended in time, with results"}, *_SUBMIT_ERRORS
            ),
        }
    },
    "/v1/batch": {
        "post": {
            "summary": "Synchronous batch of HTTP requests, answered in order",
            "parameters": [_param("tenant", "query"), _param("callback_url", "query")],
            "requestBody": {"required": True, **_JSON_ARRAY},
            "responses": _answers(
                {"200": "[{id, code, headers, body}]", "202": "still running"}, *_SUBMIT_ERRORS
            ),
        }
    },
    "/v1/batches:multi-tenant": {
        "post": {
            "summary": "One batch for each of several tenants",
            "requestBody": {"required": True, **_JSON_OBJECT},
            "responses": _answers(
                {"200": "every tenant got the batch", "207": "postedSuccess and postedProblems"},
                "invalid_json",
                "invalid_batch_format",
                "unauthorized",
            ),
        }
    },
    "/v1/batches/{batch_id}": {
        "get": {
            "summary": "A batch's status, counters and item errors",
            "parameters": [_param("batch_id")],
            "responses": _answers({"200": "the status"}, *_LOOKUP_ERRORS),
        }
    },
    "/v1/batches/{batch_id}/results": {
        "get": {
            "summary": "Item results in submission order, paged by a stable cursor",
            "parameters": [
                _param("batch_id"),
                _param("status", "query"),
                _param("cursor", "query"),
                _param("limit", "query", "integer"),
            ],
            "responses": _answers(
                {"200": "{results, next_cursor}"}, "invalid_batch_format", *_LOOKUP_ERRORS
            ),
        }
    },
    "/v1/batches/{batch_id}/cancel": {
        "post": {
            "summary": "Cancel a batch: items not yet started become cancelled",
            "parameters": [_param("batch_id")],
            "responses": _answers({"202": "cancelling"}, *_LOOKUP_ERRORS),
        }
    },
    "/healthz": {
        "get": {"summary": "Liveness and readiness", "responses": _answers({"200": "ok"})}
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus text",
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}},
        }
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "batchwire", "version": "0.1.0"},
    "components": {
        "schemas": {"Error": _ERROR},
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{"bearer": []}],
    "paths": PATHS,
}


@app.page("/openapi.json", name="openapi")
class OpenApi(web.View):
    async def get(self, request: web.Request) -> web.Response:
        return self.json(DOCUMENT)
