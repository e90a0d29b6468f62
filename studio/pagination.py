"""The native API's one way of paging collections: `page` and `per_page`.

Every list answers `{"count", "next", "previous", "results"}`, newest first;
`next` and `previous` are full URLs (null at the ends), so a script follows
`next` until it is null. Append-only logs (a job's events and metrics) page
with an `after` cursor instead, and answer `{"results", "next"}` the same way.
"""

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination

from jobs.numbers import NumberError, read_number

MAX_PER_PAGE = 200


class StudioPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "per_page"
    max_page_size = MAX_PER_PAGE

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw in (None, ""):
            return self.page_size
        try:
            return read_number(raw, whole=True, lowest=1, highest=MAX_PER_PAGE)
        except NumberError as refused:
            raise ValidationError({"per_page": [refused.sentence]}) from None

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_query_param)
        if raw not in (None, "", "last"):
            try:
                read_number(raw, whole=True, lowest=1)  # DRF's paginator reads it again
            except NumberError as refused:
                raise ValidationError({"page": [refused.sentence]}) from None
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:
            # DRF's message says "Invalid page."; say which pages there are.
            pages = self.django_paginator_class(queryset, self.get_page_size(request)).num_pages
            raise NotFound(f"There is no page {raw}: the last page is {pages}.") from None
