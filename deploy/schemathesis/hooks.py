"""Schemathesis hooks for the contract test: two values that are valid by the schema but
whose meaning depends on the server's state are kept out of the generated requests.

- A valid Idempotency-Key is replaced by a fresh one: the same key sent again with another
  body is refused by design (422 idempotency_key_reused). Invalid keys are sent as generated.
- A valid consistencyToken names an order nobody placed: the read answers 503
  not_yet_consistent by design, without waiting. Such tokens are dropped; invalid ones are
  sent as generated, and the stateful phase sends the tokens commands answer.

"Valid" is what the parameter's pattern in the served document says, so nothing here
restates a rule.
"""

import re
import uuid

import schemathesis


def matches_documented_pattern(context, name, value):
    for parameter in context.operation.definition.raw.get("parameters", []):
        if parameter.get("name") == name:
            pattern = parameter.get("schema", {}).get("pattern")
            return pattern is not None and re.search(pattern, str(value)) is not None
    return False


@schemathesis.hook
def map_case(context, case):
    key = (case.headers or {}).get("Idempotency-Key")
    if key is not None and matches_documented_pattern(context, "Idempotency-Key", key):
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    token = (case.query or {}).get("consistencyToken")
    if token is not None and matches_documented_pattern(context, "consistencyToken", token):
        del case.query["consistencyToken"]
    return case
