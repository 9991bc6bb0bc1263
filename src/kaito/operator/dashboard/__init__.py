"""The local dashboard of `kaito up`: what runs on this machine, in a browser, read-only.

`kinds` says which custom resources it shows (data: one entry per kind), `state` builds the JSON the
page polls and reads the model servers' Prometheus text (pure), `collector` gathers both on the
control plane's event loop, `server` serves the page and the JSON with the standard library (the
operator profile has no FastAPI), and `static/` holds the page itself: no build step, no CDN.
"""
