"""The web console and its JSON API (``harvester web``).

Security model, in short (the rules live in :mod:`harvester.web.auth`):

- People are ``admin`` (may change things) or ``viewer`` (reads only), made with
  ``harvester users add``; passwords are stored as scrypt hashes. Scripts use API tokens
  (``harvester users token``), stored as SHA-256 and shown once.
- Reads need a logged-in user or a token, unless the console runs with ``--public-read``.
  Fetching a raw record from S3 always needs a user (it uses stored credentials).
- Every write needs an admin: a bearer token, or the session cookie plus the session's CSRF
  token (hidden form field; ``X-CSRF-Token`` header for the JSON API).
- The session cookie is HttpOnly, SameSite=Strict, signed by itsdangerous (HMAC-SHA256)
  under a key derived from the at-rest secret key, and expires after 12 h. It carries the
  user's session generation, checked on every request: logout, a password change
  (``harvester users password``), disabling the user and ``harvester users logout`` raise
  it, which ends every session of that user at once, copies of the cookie included.
  ``--secure-cookies`` adds Secure (``__Host-`` name) and HSTS for a console behind HTTPS.
- Every response carries a Content-Security-Policy without inline script or style,
  ``frame-ancestors 'none'``/X-Frame-Options DENY, nosniff and ``Referrer-Policy:
  no-referrer``. Secret access keys are write-only; access key ids are shown masked.
- The console listens on 127.0.0.1 by default and then answers loopback Host names only.
"""

from harvester.web.app import create_app
from harvester.web.state import WebOptions

__all__ = ["WebOptions", "create_app"]
