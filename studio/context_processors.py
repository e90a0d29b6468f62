"""Template context every page needs: the navigation."""

from django.urls import reverse

NAVIGATION = [
    ("dashboard", "Dashboard"),
    ("datasets", "Datasets"),
    ("jobs", "Jobs"),
    ("playground", "Playground"),
    ("models", "Models"),
    ("tokens", "API tokens"),
]


def navigation(request):
    if not request.user.is_authenticated:
        return {}
    items = []
    for name, label in NAVIGATION:
        url = reverse(name)
        # A section stays highlighted on its sub-pages (/datasets/<id>/ too).
        active = request.path == url if url == "/" else request.path.startswith(url)
        items.append({"url": url, "label": label, "active": active})
    return {"nav_items": items}
