"""Schemathesis hooks for the contract test: two values that are valid by the schema but
whose meaning depends on the server's state are kept out of the generated requests.

- A valid Idempotency-Key is replaced by a fresh one: the same key sent again with another
  body is refused by design (422 idempotency_key_reused). Invalid keys are sent as generated.
- A generated consistencyToken that is valid names an order nobody placed: the read answers
  503 not_yet_consistent by design, without waiting. Such tokens are dropped; invalid ones
  are sent as generated. The token a link carries from a placed order to its read (it names
  the order the read asks for) is kept.

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
    order_id = (case.path_parameters or {}).get("id")
    from_link = order_id is not None and str(token).startswith(f"{order_id}.")
    if (
        token is not None
        and not from_link
        and matches_documented_pattern(context, "consistencyToken", token)
    ):
        del case.query["consistencyToken"]
    return case
