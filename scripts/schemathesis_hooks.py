"""schemathesis hooks for scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

openapi.yaml states every bound a JSON schema can state. A few context rules it can only state
in words, in the descriptions (src/http/schemas/schemas.ts, src/http/schemas/binary-headers.ts):

  - a context's total, at most 8192 UTF-8 bytes of keys and values (a sum: no schema keyword);
  - in the x-envelope-context header, percent-escapes that decode to UTF-8, and no repeated key.

A schema-valid request that breaks one of them gets 400 InvalidContext. scripts/schemathesis.toml
therefore lists 400 among the accepted answers to schema-valid data on the operations that take
a context, and this check takes that allowance back for every other 400: a 400 to schema-valid
data passes only when it is InvalidContext AND the request does break one of these rules, as
computed here independently of the service. Any other 400 (a bound the schema states wrongly,
as a context key of 90 three-byte characters once was) fails the run.
"""

from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes

import schemathesis

# ENVELOPE_LIMITS.maxContextTotalBytes (src/format/limits.ts), as the descriptions state it.
MAX_CONTEXT_TOTAL_BYTES = 8192
CONTEXT_HEADER = "x-envelope-context"


def _utf8_length(text: str) -> int:
    # A lone surrogate (JSON allows "\ud800") is 3 bytes to the service (Buffer.byteLength).
    return len(text.encode("utf-8", "surrogatepass"))


def _total_over_limit(context: object) -> bool:
    if not isinstance(context, dict):
        return False
    total = sum(_utf8_length(k) + _utf8_length(v) for k, v in context.items() if isinstance(k, str) and isinstance(v, str))
    return total > MAX_CONTEXT_TOTAL_BYTES


def _header_breaks_rule(value: str) -> bool:
    """Invalid UTF-8 behind an escape, or a key given twice (after decoding)."""
    if value == "":
        return False
    seen: set[str] = set()
    for pair in value.split("&"):
        key, _, entry = pair.partition("=")
        try:
            decoded_key = unquote_to_bytes(key.replace("+", " ")).decode("utf-8")
            unquote_to_bytes(entry.replace("+", " ")).decode("utf-8")
        except UnicodeDecodeError:
            return True
        if decoded_key in seen:
            return True
        seen.add(decoded_key)
    return False


def _documented_reason(case) -> str | None:
    headers = {k.lower(): v for k, v in (case.headers or {}).items()}
    header = headers.get(CONTEXT_HEADER)
    if isinstance(header, str) and _header_breaks_rule(header):
        return "the context header repeats a key or escapes invalid UTF-8"
    body = case.body if isinstance(case.body, dict) else None
    if body is not None and _total_over_limit(body.get("context")):
        return f"the context is over {MAX_CONTEXT_TOTAL_BYTES} bytes in total"
    return None


@schemathesis.check
def context_rules_explain_400(ctx, response, case):
    """A 400 to schema-valid data must be a documented context rule the request really breaks."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        code = None
    reason = _documented_reason(case)
    if code == "InvalidContext" and reason is not None:
        return None
    raise AssertionError(
        f"Schema-valid data answered 400 {code}, and no rule stated only in the description explains it "
        f"({'the request breaks none' if reason is None else reason}): the schema promises what the service refuses"
    )
