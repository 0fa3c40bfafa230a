"""Built-in object labellers (``streamgaze objects --labeller NAME``): `annotation` (``annotation``: from an
annotation file such as the synthetic world's ``truth.json``) and `openai` (``openai``: region-specific visual
prompting through an OpenAI-compatible multimodal model)."""
from __future__ import annotations

from streamgaze import hookimpl
from streamgaze_builtin.labellers.annotation import AnnotationLabeller
from streamgaze_builtin.labellers.openai import LABELLER, OpenAILabeller


@hookimpl
def streamgaze_object_labellers():
    return {"annotation": AnnotationLabeller(), LABELLER: OpenAILabeller()}
