"""Refusals in plain words: what happened and what the user can do."""

from __future__ import annotations

# Matched on the reason code itself, then on its first part (``licence.hash_mismatch`` ->
# ``licence``). Codes come from policies.gate, policies.licence and the assistant.
_EXACT: dict[str, str] = {
    "usage.quota_requests": "You have reached your daily number of questions. The allowance "
    "renews tomorrow; ask your administrator if you need more.",
    "usage.quota_tokens": "You have used up today's allowance of answer text. It renews "
    "tomorrow; ask your administrator if you need more.",
    "usage.rate_limited": "You are asking faster than allowed. Wait a minute and ask again.",
    "usage.acceptable_use": "This question falls outside the organisation's acceptable-use "
    "policy for the assistant, so it was not answered.",
    "usage.acceptable_use_response": "The answer was withheld because it broke the "
    "organisation's acceptable-use policy.",
    "usage.empty_input": "The question was empty.",
    "usage.input_too_large": "The question is too long. Please shorten it.",
    "usage.role_not_allowed": "Your account is not allowed to use the assistant.",
    "policy.role_required": "Your account is not allowed to use the assistant.",
    "policy.access_denied": "You do not have access to the documents needed for this.",
    "answer.no_support": "None of the documents you may read answers this question.",
}
_PREFIX: dict[str, str] = {
    "licence": "The assistant's model is not cleared to answer right now (its licence has not "
    "been accepted, or its file is not the approved one). Your administrator has to fix this.",
    "usage": "The usage policy did not allow this request.",
    "llm": "The answer could not be produced because the language model is unavailable.",
    "index": "The document index is unavailable right now.",
    "ui": "The answer could not be produced because of a technical problem.",
}


def plain_reason(reason_code: str | None, detail: str | None) -> str:
    """A sentence for the user, followed by the policy's own message when there is one."""
    code = (reason_code or "").lower()
    head = (
        _EXACT.get(code)
        or _PREFIX.get(code.split(".", 1)[0])
        or ("The assistant did not answer this request.")
    )
    detail = (detail or "").strip()
    if detail and detail not in head:
        return f"{head}\n\nDetails: {detail}"
    return head
