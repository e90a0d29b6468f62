"""The web process's transport and browser security: the switches a
deployment behind a TLS proxy turns on, and the Content-Security-Policy
(django-csp). `studio.settings` takes them from here. README: "Behind TLS /
production".
"""

from csp.constants import NONE, SELF

from studio.env import env_bool, env_int

# --- Behind TLS (README, "Behind TLS / production") ---------------------------
# Every switch is off by default: `make run` serves plain http on localhost,
# where a Secure cookie would never come back and a redirect to https would
# lead nowhere. A deployment behind a TLS proxy turns them all on.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Health checks come over plain http from inside the host or container
# (docker-compose.yml's healthcheck, the launcher): a redirect would fail them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# uvicorn takes the scheme and client address from X-Forwarded-Proto/-For, but only from
# TAILOR_FORWARDED_ALLOW_IPS (studio/launcher.py). This switch believes the header from
# anyone: only where nothing but the proxy, which overwrites it, can reach the studio.
if env_bool("TAILOR_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# htmx sends the token from the page (hx-headers on <body>), and no script of
# ours reads the cookie: a script injected into a page cannot read it either.
CSRF_COOKIE_HTTPONLY = True

# --- Content-Security-Policy (django-csp) -------------------------------------
# Scripts and styles only from our own files: no inline <script>, no
# on*="..." handler, no style="" attribute, no <style> block, no eval.
# Pico's and Swagger UI's icons are data: URLs in their CSS; the live pages'
# websockets are same-origin, which 'self' covers (CSP Level 3).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
