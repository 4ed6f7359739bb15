"""The HTTP side of the gateway: the JSON API (app.py), status pages (status_page.py) and
the server that runs them (server.py). Webhooks are in gateway/webhooks.py."""
