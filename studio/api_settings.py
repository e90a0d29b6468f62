"""The REST API's settings (Django REST framework and drf-spectacular): fixed
choices of the studio, none read from the environment. `studio.settings`
takes them from here, so that the settings module stays a page of switches.
"""

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "studio.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["studio.throttling.ApiTokenRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "studio.pagination.StudioPagination",
    "EXCEPTION_HANDLER": "studio.api_errors.exception_handler",
    # `?format=` is the datasets list's filter, not a renderer override (which
    # answered it 404); clients choose JSON by the Accept header.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "studio.renderers.StudioBrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "studio.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tailor API",
    "DESCRIPTION": "Fine-tune, evaluate and serve small language models.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A token given to Swagger UI's Authorize lasts as long as the page: kept in
    # localStorage it would outlive the session, readable by any script on the
    # origin. No validator badge: it would send the schema's address to
    # validator.swagger.io (and CSP refuses the image anyway).
    "SWAGGER_UI_SETTINGS": {
        "persistAuthorization": False,
        "displayRequestDuration": True,
        "validatorUrl": None,
    },
}
