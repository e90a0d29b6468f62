from django.urls import path

from audit import views

# Mounted at /ops/audit/ (studio/urls.py).
urlpatterns = [
    path("", views.audit_log, name="audit-log"),
    path("export.csv", views.audit_export, name="audit-export"),
]
