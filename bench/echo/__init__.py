"""The baseline of the API benchmark: bare daphne + DRF that verifies one Ed25519 signature per request.

    DJANGO_SETTINGS_MODULE=bench.echo.settings python -m daphne -p PORT bench.echo.asgi:application

POST /echo takes a transaction envelope, checks its signature over the
canonical body (the same two calls a node makes), and answers 202 with the
tx id, or 400. No middleware, no database, no authentication or throttling:
what any Python HTTP service on this stack costs per signed request.
"""
