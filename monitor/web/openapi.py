"""The API's OpenAPI 3.1 description (served at ``/openapi.json``), written out by hand so it
documents exactly what :mod:`monitor.web.app` answers, with the alarm JSON's keys from
:data:`core.wire.ALARM_FIELDS`."""

from __future__ import annotations

from typing import Any

from core.alarms import KINDS, TRANSITIONS
from core.estimate import STATES
from core.wire import ALARM_FIELDS

_SUBJECT = {"name": "subject", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "Subject id, percent-encoded (any characters)."}
_NUM = {"type": ["number", "null"]}
_READ_ONLY = {"type": "boolean", "description": "True when the server has no token: POSTs answer 403, so the pages "
              "show no working Acknowledge button."}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "Error (one line in `error`)")

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Instance": {
        "type": "object",
        "description": "The process serving a subject (a sharded ward runs one per share).",
        "properties": {"host": {"type": "string"}, "pid": {"type": "integer"}, "shard": {"type": "string"},
                       "label": {"type": "string", "description": "host:pid shard K/N"}},
    },
    "ActiveAlarm": {
        "type": "object",
        "properties": {
            "subject": {"type": "string"}, "kind": {"enum": list(KINDS)}, "alarm_id": {"type": "integer"},
            "state": {"enum": ["raised", "acknowledged"]}, "raised_t": {"type": "number"}, "value": _NUM,
            "threshold": _NUM, "message": {"type": "string"}, "acknowledged_t": _NUM,
            "acknowledged_by": {"type": "string"},
        },
    },
    "AlarmEvent": {
        "type": "object",
        "description": "One alarm transition: the JSON published on MQTT <prefix>/<subject>/alarm and LSL.",
        "required": list(ALARM_FIELDS),
        "properties": {
            "subject": {"type": "string"}, "kind": {"enum": list(KINDS)}, "transition": {"enum": list(TRANSITIONS)},
            "alarm_id": {"type": "integer"}, "t": {"type": "number", "description": "shared (LSL) clock, s"},
            "value": _NUM, "threshold": _NUM, "message": {"type": "string"}, "by": {"type": "string"},
            "origin": {"type": "string"},
        },
    },
    "Estimate": {
        "type": "object",
        "properties": {
            "subject": {"type": "string"}, "t_end": {"type": "number"}, "index": _NUM, "smoothed": _NUM,
            "headline": _NUM, "band": {"enum": ["no", "low", "high", None]}, "state": {"enum": list(STATES)},
            "mode": {"type": "string"}, "probs": {"type": "object"}, "quality": {"type": "object"},
            "valid": {"type": "boolean"}, "origin": {"type": "string"},
        },
    },
    "Tile": {
        "type": "object",
        "properties": {
            "subject": {"type": "string"}, "instance": _ref("Instance"), "headline": _NUM,
            "band": {"enum": ["no", "low", "high", None]}, "state": {"enum": list(STATES)},
            "state_text": {"type": "string"}, "t_end": _NUM,
            "sparkline": {"type": "array", "items": {"type": "array", "items": _NUM}},
            "health": {"type": "object", "additionalProperties": {"enum": ["good", "poor", "lost", "unknown"]}},
            "alarms": {"type": "array", "items": _ref("ActiveAlarm")},
        },
    },
}


def openapi_schema(version: str = "0.1.0") -> dict[str, Any]:
    """The document (a fresh dict each call)."""
    token: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "PainMon ward API", "version": version,
                 "description": "Read-only ward view of one PainMon instance; POSTs need the bearer token."},
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/api/subjects": {"get": {"summary": "Every subject's tile", "responses": {"200": _json({
                "type": "object", "properties": {"instance": _ref("Instance"),
                                                 "subjects": {"type": "array", "items": _ref("Tile")},
                                                 "read_only": _READ_ONLY}})}}},
            "/api/subjects/{subject}": {"get": {
                "summary": "One subject: tile, latest estimate, active alarms and alarm history",
                "parameters": [_SUBJECT],
                "responses": {"200": _json({"allOf": [_ref("Tile"), {"type": "object", "properties": {
                    "latest": {"oneOf": [_ref("Estimate"), {"type": "null"}]},
                    "alarm_history": {"type": "array", "items": _ref("AlarmEvent")},
                    "read_only": _READ_ONLY}}]}), "404": _ERROR}}},
            "/api/subjects/{subject}/estimates": {"get": {
                "summary": "Estimates after `since`, oldest first, paged",
                "parameters": [
                    _SUBJECT,
                    {"name": "since", "in": "query", "schema": {"type": "number"},
                     "description": "Only estimates with t_end > since (shared clock, s). Next page: `next`."},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                ],
                "responses": {"200": _json({"type": "object", "properties": {
                    "estimates": {"type": "array", "items": _ref("Estimate")},
                    "next": {"type": ["number", "null"], "description": "`since` of the next page; null: none"}}}),
                    "400": _ERROR, "404": _ERROR}}},
            "/api/subjects/{subject}/alarms/{alarm_id}/ack": {"post": {
                "summary": "Acknowledge a raised alarm", "security": token,
                "parameters": [_SUBJECT, {"name": "alarm_id", "in": "path", "required": True,
                                          "schema": {"type": "integer"}}],
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"by": {"type": "string", "maxLength": 100}}}}}},
                "responses": {"200": _json(_ref("AlarmEvent")), "401": _ERROR, "403": _ERROR, "404": _ERROR,
                              "409": _ERROR}}},
            "/api/subjects/{subject}/events": {"post": {
                "summary": "Add an event marker (recorded, drawn on the trend)", "security": token,
                "parameters": [_SUBJECT],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["label"],
                    "properties": {"label": {"type": "string", "maxLength": 200}}}}}},
                "responses": {"200": _json({"type": "object"}), "400": _ERROR, "401": _ERROR, "403": _ERROR,
                              "404": _ERROR}}},
            "/api/health": {"get": {"summary": "Instance, streams and engine", "responses": {"200": _json(
                {"type": "object"})}}},
            "/api/stream": {"get": {"summary": "Server-sent events: `estimate` and `alarm` (JSON data)",
                                    "responses": {"200": {"description": "text/event-stream"}}}},
        },
    }
