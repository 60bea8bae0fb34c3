"""Security headers on every response: a strict CSP, no framing, no MIME sniffing, same-origin referrers."""
from __future__ import annotations

# The app's own files only: no inline or injected script, no plugins, no framing, forms post home.
# Styles are files too (templates carry no style= attributes; htmx's injected indicator style is
# switched off in base.html), so an injected attribute cannot restyle a page either.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
            "form-action 'self'; frame-ancestors 'none'")
# An uploaded file rendered by mistake is a sandboxed document that may load nothing but itself.
UPLOAD_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"

HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_app(app) -> None:
    """Add the headers to every response, error pages, redirects and static files included;
    a view that set a stricter policy of its own (uploaded files) keeps it."""

    @app.after_request
    def security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response
