"""Flower's config file (`celery -A workers flower --conf=<this file>`): /metrics needs the login too.

Flower 2.x serves /metrics without checking its basic auth; this wraps that handler in tornado's
`authenticated`, which asks for the same login as every other page.
"""

import tornado.web
from flower.views.monitor import Metrics

if not getattr(Metrics.get, "movie_gen_guarded", False):
    Metrics.get = tornado.web.authenticated(Metrics.get)
    Metrics.get.movie_gen_guarded = True
