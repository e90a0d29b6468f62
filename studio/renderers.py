"""The browsable API (DRF's HTML pages for `/api/v1/…` opened in a browser)
under the studio's Content-Security-Policy.

DRF's own template carries a `<style>` block (syntax highlighting) and two
`style=""` attributes. Rather than copy its template to strip them, its pages
alone allow inline styles; scripts stay `'self'` only, as on every page.

Trade-off: an injected style on those pages could restyle them, but no style
can run code, and the pages show JSON that DRF escapes.
"""

from csp.constants import UNSAFE_INLINE
from rest_framework.renderers import BrowsableAPIRenderer


class StudioBrowsableAPIRenderer(BrowsableAPIRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response._csp_update = {"style-src": [UNSAFE_INLINE]}  # read by django-csp
        return super().render(data, accepted_media_type, renderer_context)
