"""The minimal baseline for the ingest benchmark: one INSERT, one UPDATE, one commit per report.

Served by gunicorn with deploy/gunicorn.conf.py, like ivrdesk. It reads the JSON body,
inserts the first result into bench_events and updates the matching row of bench_calls.
"""

from __future__ import annotations

import json
import os

from flask import Flask, Response, request
from sqlalchemy import text

from app.db import make_engine

engine = make_engine(os.environ["IVR_DATABASE_URL"])
app = Flask(__name__)


@app.post("/notify/ivr/<token>")
def receive(token: str) -> Response:
    """Store one report the plainest way possible."""
    result = json.loads(request.get_data())["results"][0]
    status = result["status"]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bench_events (message_id, status_id, status_name, raw) "
                "VALUES (:m, :s, :n, :r)"
            ),
            {
                "m": result["messageId"],
                "s": status["id"],
                "n": status["name"],
                "r": json.dumps(result),
            },
        )
        connection.execute(
            text("UPDATE bench_calls SET status_id = :s, status_name = :n WHERE message_id = :m"),
            {"m": result["messageId"], "s": status["id"], "n": status["name"]},
        )
    return Response('{"applied": 1}', mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    """Say the process is alive."""
    return Response('{"status": "ok"}', mimetype="application/json")
