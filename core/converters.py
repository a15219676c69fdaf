"""URL converters. `<id:…>` is a positive whole number small enough for every store we use (1 to 9
digits); anything longer is simply not a URL of ours (404), never an overflow deep in a database."""

from django.urls import register_converter

MAX_ID = 999_999_999


class IdConverter:
    regex = "[0-9]{1,9}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")
