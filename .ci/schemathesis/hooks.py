"""Schemathesis hooks for `.ci/schemathesis/run`: the three rules of the control plane that a
JSON schema cannot state. Each applies to positive (schema-valid) cases only, so what the
document does state is still fuzzed as generated; negative cases are never touched.

- `expires_at` of a new access key must lie after now and within five years;
- `from` must not be after `to` (the call list, the activity log), and a summary or series
  window must have `from` before `to`, at most 93 days apart;
- a password has at least 8 characters (as the schema's `minLength` counts) and at most 72
  UTF-8 bytes, where the schema's `maxLength` counts characters; a positive password over 72
  bytes is cut to 72 bytes' worth of characters (and a cut that leaves fewer than 8 characters
  is padded with ASCII);
- `PUT /sources/{id}` may leave a secret out only when the stored source has the same type; a
  positive case gets every secret of its type filled in, as a type change needs;
- a `postgres` source's `host` must be one the deployment allows (`POSTGRES_ALLOWED_HOSTS`,
  which `run` sets to `db.example.com`, as it sets `POSTGRES_ALLOW_INSECURE_HOSTS`); a positive
  case gets that host.
- an `mcp` source's credential fields follow its `auth` (`bearer`: `token`; `header`:
  `header_name`, not a reserved header, and `header_value`; others refused): a positive case
  gets the fields its `auth` needs and loses the others.

- `listed_members` of a server must be members of its organization: a positive case lists
  nobody (the fuzzer cannot know the ids of members);
- a source or a server stays in its organization: a positive `PUT` does not name one (another
  would be refused).

Every rule is also written in the operation's description in the OpenAPI document.
"""

from datetime import datetime, timedelta, timezone

import schemathesis


# Required secret fields by source type, read from the document itself (the required fields
# it marks `writeOnly`), so a new source type needs nothing here.
_SECRETS = None


def _secrets(case):
    global _SECRETS
    if _SECRETS is None:
        _SECRETS = {}
        schemas = case.operation.schema.raw_schema.get("components", {}).get("schemas", {})
        for name, schema in schemas.items():
            if not name.endswith("Source"):
                continue
            properties = schema.get("properties", {})
            kinds = properties.get("type", {}).get("enum", [])
            metadata = properties.get("source_metadata", {})
            fields = metadata.get("properties", {})
            required = metadata.get("required", [])
            secret = tuple(
                f for f, s in fields.items() if s.get("writeOnly") and f in required
            )
            for kind in kinds:
                _SECRETS[kind] = secret
    return _SECRETS
# The host `run` allows for `postgres` sources.
POSTGRES_HOST = "db.example.com"

# The fields each `auth` of an `mcp` source needs, with a valid value (shared/src/model/source/mcp/).
MCP_AUTH = {
    "bearer": {"token": "fuzz-token"},
    "header": {"header_name": "X-Api-Key", "header_value": "fuzz-value"},
}
MCP_CREDENTIALS = ("token", "header_name", "header_value")


def _fit_mcp_auth(body):
    metadata = body.get("source_metadata")
    if body.get("type") != "mcp" or not isinstance(metadata, dict):
        return
    auth = metadata.get("auth")
    auth = auth.strip() if isinstance(auth, str) else ""
    needed = MCP_AUTH.get(auth, {})
    for field in MCP_CREDENTIALS:
        if field in needed:
            metadata[field] = needed[field]
        else:
            metadata.pop(field, None)


def _positive(case):
    meta = getattr(case, "meta", None)
    if meta is None:
        return True  # schema examples are meant to be valid
    return meta.generation.mode.is_positive


def _parse(value):
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _iso(moment):
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _fit_password(value):
    if not isinstance(value, str):
        return value
    while len(value.encode("utf-8")) > 72:
        value = value[:-1]
    while len(value) < 8:
        value += "a"
    return value


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if not _positive(case):
        return
    method, path = case.operation.method.upper(), case.operation.path
    now = datetime.now(timezone.utc)
    body = case.body if isinstance(case.body, dict) else None
    query = case.query if isinstance(case.query, dict) else None

    if method == "POST" and path.endswith("/keys") and body and "expires_at" in body:
        if body["expires_at"] is not None:
            body["expires_at"] = _iso(now + timedelta(days=30))

    if method == "GET" and query and (path.endswith("/calls") or path.endswith("/activity")):
        start, end = _parse(query.get("from")), _parse(query.get("to"))
        if start and end and start > end:
            query["from"], query["to"] = query["to"], query["from"]

    if method == "GET" and query and (
        path.endswith("/calls/summary") or path.endswith("/calls/series")
    ):
        start, end = _parse(query.get("from")), _parse(query.get("to"))
        try:
            if end and "from" in query:
                query["from"] = _iso(end - timedelta(hours=1))
            elif start and "to" not in query:
                query["from"] = _iso(now - timedelta(hours=1))
        except (OverflowError, ValueError):  # `to` at the very start of year 1
            query["from"], query["to"] = _iso(now - timedelta(hours=1)), _iso(now)

    if method == "PUT" and path == "/api/v1/sources/{id}" and body:
        metadata = body.get("source_metadata")
        for field in _secrets(case).get(body.get("type"), ()):
            if isinstance(metadata, dict) and not (metadata.get(field) or "").strip():
                metadata[field] = "fuzz-secret"

    if method in ("POST", "PUT") and path.startswith("/api/v1/sources") and body:
        metadata = body.get("source_metadata")
        if body.get("type") == "postgres" and isinstance(metadata, dict):
            metadata["host"] = POSTGRES_HOST
    if body and method in ("POST", "PUT") and path == "/api/v1/sources" or (
        method == "PUT" and path == "/api/v1/sources/{id}"
    ):
        if body:
            _fit_mcp_auth(body)

    if body and method in ("POST", "PUT") and path.startswith("/api/v1/mcp-servers"):
        if "listed_members" in body and body["listed_members"] is not None:
            body["listed_members"] = []

    if body and method == "PUT" and path in ("/api/v1/sources/{id}", "/api/v1/mcp-servers/{id}"):
        body.pop("organization_id", None)

    if body and method in ("POST", "PUT"):
        for field in ("password", "new_password"):
            if field in body:
                body[field] = _fit_password(body[field])
