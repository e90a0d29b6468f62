"""Template context every page needs: the navigation."""

from django.urls import reverse

NAVIGATION = [
    ("dashboard", "Dashboard"),
    ("datasets", "Datasets"),
    ("jobs", "Jobs"),
    ("sweeps", "Sweeps"),
    ("playground", "Playground"),
    ("models", "Models"),
    ("tokens", "API tokens"),
]


def navigation(request):
    # A request refused before the session was read (a NUL in the address:
    # the 400 page) has no user at all.
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    items = []
    for name, label in NAVIGATION:
        url = reverse(name)
        # A section stays highlighted on its sub-pages (/datasets/<id>/ too).
        active = request.path == url if url == "/" else request.path.startswith(url)
        items.append({"url": url, "label": label, "active": active})
    return {"nav_items": items}
