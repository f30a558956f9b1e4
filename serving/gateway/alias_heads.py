"""Which heads the first API's aliases read (``/v1/qa``, ``/v1/profile``, ``/v1/similarity``).

Apart from :mod:`serving.gateway.aliases` (Flask, the backends) so ``scripts.print_curls``
prints an alias's curls only for a model that answers it, by the same rule.
"""

from __future__ import annotations

from serving.spec import ServingSpec

# Each alias's request fields (an instance of the model under its name must have exactly these).
FIELDS = {
    "qa": {"article", "question"},
    "profile": {"posts"},
    "similarity": {"text_a", "text_b"},
}
# The heads each alias reads (field -> the kinds whose answer it reads; None: any field of
# the first kind), as qa_answer, profile_answer and alias_answer read them: a model of your
# own served under one of these names (a "similarity" of other heads) gives no alias answer.
_SCORES = ("score", "regression")
NEEDED: dict[str, dict[str | None, tuple[str, ...]]] = {
    "qa": {None: ("categorical",)},
    "profile": {"age": _SCORES, "income_group": ("categorical",), "gender": ("binary",)},
    "similarity": {"score": _SCORES},
}
OPTIONAL = {"profile": {"age_band": ("categorical",)}}
# The keys an alias's body holds beside the model's input fields (qa's top_k, the batch form's
# instances): an input of that name would be one key for two things.
BODY_KEYS = {"qa": ("top_k", "instances"), "profile": ("instances",)}


def alias_problem(model: str, spec: ServingSpec) -> str | None:
    """Why ``spec``'s heads cannot give the ``/v1/<model>`` answers, or its inputs cannot
    be told from the body's own keys (None: they can).

    The alias is then not in ``/openapi.json``, and a request to it is a 502 before the model
    runs (it answered a 502 only after the backend call, and the document listed the route).
    """
    fields = {item.field for item in spec.inputs}
    for key in BODY_KEYS.get(model, ()):
        # Found by the adversarial repo pass 11: a qa model with an input named top_k got a
        # body model whose top_k was the alias's integer, and {"article", "top_k": 3} was a 500
        # (the input's text missing at encoding); an input named instances made every body
        # with it the batch form.
        if key in fields:
            return f"its input {key!r} has the name of this endpoint's own {key!r} key"
    kinds = {head.field: head.kind for head in spec.heads}
    needed, optional = NEEDED.get(model, {}), OPTIONAL.get(model, {})
    for field, allowed in needed.items():
        if field is None:
            if not any(kind in allowed for kind in kinds.values()):
                return f"no {allowed[0]} head"
        elif kinds.get(field) not in allowed:
            return f"no {field!r} head of kind {' or '.join(allowed)}"
    for field, allowed in optional.items():
        if field in kinds and kinds[field] not in allowed:
            return f"its {field!r} head is no {' or '.join(allowed)} head"
    return None
