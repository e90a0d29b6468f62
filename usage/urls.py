from django.urls import path

from usage import views

urlpatterns = [
    path("usage/", views.usage_page, name="usage"),
    path("usage/export.csv", views.usage_csv, name="usage-export"),
    path("ops/usage/", views.everyone_page, name="ops-usage"),
    path("ops/usage/export.csv", views.everyone_csv, name="ops-usage-export"),
]
