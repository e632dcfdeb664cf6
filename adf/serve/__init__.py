"""`adf serve`: a detector behind HTTP, with a web page.

Modules: `adapter` (the one door to the model), `upload` (an uploaded file ->
16 kHz model inputs, with the limits), `batching` (requests of many clients
scored together on one worker thread), `app` (the FastAPI application),
`command` (the sub-command) and `static/index.html` (the page at `/`).
"""
