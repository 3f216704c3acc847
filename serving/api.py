"""A small read-only HTTP API over the serving snapshot (standard library only).

    GET /api/analytics/dashboard?start=YYYY-MM-DD&end=YYYY-MM-DD[&channel=&agent_version=]
    GET /api/analytics/funnel?start=&end=[&channel=&agent_version=]
    GET /api/analytics/ab-tests
    GET /                      the HTML report (query parameters as for the dashboard;
                               default: the last 30 days with data)

Read-only by construction: each request opens the serving file with a read-only DuckDB
connection. 422 for invalid parameters, 503 while nothing is published.
"""

import json
from datetime import date, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from loaders.paths import WarehousePaths

from .dashboard import DashboardError, Slice, ab_tests, dashboard, data_range, funnel
from .publish import SnapshotUnavailableError, connect_snapshot, current_snapshot, serving_link


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parse_date(params: dict[str, list[str]], name: str, default: date | None) -> date:
    values = params.get(name)
    if not values:
        if default is None:
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"query parameter {name!r} is required")
        return default
    try:
        return date.fromisoformat(values[0])
    except ValueError:
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY, f"{name}={values[0]!r} is not a date (YYYY-MM-DD)"
        ) from None


def _slice(params: dict[str, list[str]], con: Any, required: bool) -> Slice:
    first, last = data_range(con)
    default_end = None if required else last
    default_start = None if required else (max(first, last - timedelta(days=29)) if last else None)
    start = _parse_date(params, "start", default_start)
    end = _parse_date(params, "end", default_end)
    channel = params.get("channel", [None])[0]
    agent_version = params.get("agent_version", [None])[0]
    try:
        return Slice(start, end, channel, agent_version)
    except DashboardError as error:
        raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)) from None


def handle(paths: WarehousePaths, path: str, query: str) -> tuple[HTTPStatus, str, bytes]:
    params = parse_qs(query)
    if current_snapshot(paths) is None:
        raise ApiError(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "the warehouse has not been built yet; run `chat-analytics build`",
        )
    try:
        con = connect_snapshot(paths)
    except SnapshotUnavailableError as error:
        raise ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, str(error)) from None
    with con:
        try:
            if path == "/api/analytics/dashboard":
                body: Any = dashboard(con, _slice(params, con, required=True))
            elif path == "/api/analytics/funnel":
                period = _slice(params, con, required=True)
                body = {"period": {"start": str(period.start), "end": str(period.end)},
                        "funnel": funnel(con, period)}
            elif path == "/api/analytics/ab-tests":
                body = {"ab_tests": ab_tests(con)}
            elif path in ("/", "/index.html"):
                from .report import render_html, report_data

                page = render_html(report_data(con, _slice(params, con, required=False)))
                return HTTPStatus.OK, "text/html; charset=utf-8", page.encode()
            else:
                raise ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
        except DashboardError as error:
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)) from None
    return HTTPStatus.OK, "application/json", json.dumps(body, default=str).encode()


def make_handler(paths: WarehousePaths) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "chat-analytics"

        def do_GET(self) -> None:
            url = urlparse(self.path)
            try:
                status, content_type, body = handle(paths, url.path, url.query)
            except ApiError as error:
                status, content_type = error.status, "application/json"
                body = json.dumps({"detail": str(error)}).encode()
            except Exception as error:  # every error answers as JSON, never a dropped connection
                status, content_type = HTTPStatus.INTERNAL_SERVER_ERROR, "application/json"
                body = json.dumps({"detail": f"internal error: {type(error).__name__}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def serve(host: str = "127.0.0.1", port: int = 8000, paths: WarehousePaths | None = None) -> None:
    paths = paths or WarehousePaths.from_env()
    server = ThreadingHTTPServer((host, port), make_handler(paths))
    print(f"serving {serving_link(paths)} on http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
