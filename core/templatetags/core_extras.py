"""Template helpers every app's pages use."""

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString

from core.exceptions import REFUSALS, refusal

register = template.Library()


@register.filter(name="refusal")
def refusal_words(status: int) -> str:
    """A refused request's status as words ("Not allowed"), not a number."""
    return refusal(int(status))


@register.simple_tag
def refusal_words_json() -> SafeString:
    """The words of every refusal, for the pages' scripts (a JSON data block: no script runs)."""
    return json_script(REFUSALS, "refusal-words")
