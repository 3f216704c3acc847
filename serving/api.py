"""The read-only HTTP API over the published snapshot (FastAPI, served by uvicorn).

    GET /api/analytics/dashboard       headline metrics, funnel, top fallback topics, A/B tests
    GET /api/analytics/funnel          the funnel of a period
    GET /api/analytics/ab-tests        every A/B test, every metric
    GET /api/analytics/sessions        the sessions behind a number: filtered, sorted, paged
    GET /api/analytics/sessions/{id}   one session: scores, exposures, event timeline (no text)
    GET /                              the HTML report
    GET /docs, /openapi.json           the API's documentation

Every request reads the snapshot current when it arrives, read-only, and gets its own
connection; an answer is computed once per snapshot (snapshots never change once published).
Every error is a JSON body.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from loaders.paths import WarehousePaths

from . import dashboard as board
from . import sessions as drill
from .publish import SnapshotUnavailableError, serving_link
from .reader import NothingPublishedError, SnapshotReader

MAX_TEXT = 128  # characters of any text parameter; longer values are refused, never echoed
MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class SnapshotView:
    """A request's connection to the current snapshot, and the answers computed from it."""

    con: duckdb.DuckDBPyConnection
    answer: Callable[[Callable[[], Any]], Any]


# --- response models -----------------------------------------------------------------------

class Period(BaseModel):
    start: date = Field(description="First session date of the period (UTC), inclusive.")
    end: date = Field(description="Last session date of the period (UTC), inclusive.")


class Metrics(BaseModel):
    total_sessions: int = Field(description="Sessions that started in the period.")
    avg_session_duration_seconds: float | None = Field(description="Mean session duration (s).")
    avg_messages_per_session: float | None = Field(description="User messages per session.")
    resolution_rate: float | None = Field(description="1 - escalation rate.")
    escalation_rate: float | None = Field(description="Escalated sessions / sessions.")
    fallback_rate: float | None = Field(description="Fallback events per user message.")
    conversion_rate: float | None = Field(description="Converted sessions / sessions.")
    avg_first_response_ms: float | None = Field(description="Mean first response (ms).")
    avg_satisfaction_score: float | None = Field(description="Mean session rating (1-5).")
    containment_rate: float | None = Field(description="Sessions without an escalation / sessions.")
    confirmed_resolution_rate: float | None = Field(
        description="Sessions resolved with evidence (conversion, flow, positive feedback) / sessions.")
    verified_resolution_rate: float | None = Field(
        description="Resolved sessions whose user did not come back within the window / those settled.")
    total_cost_usd: float | None = Field(description="What producing the answers cost (USD).")
    cost_per_session: float | None = Field(description="Total cost / sessions.")
    cost_per_resolved_session: float | None = Field(description="Total cost / resolved sessions.")


class Percentiles(BaseModel):
    p50: float | None = Field(description="Median (ms), within 1 % (DDSketch).")
    p90: float | None = Field(description="90th percentile (ms), within 1 %.")
    p99: float | None = Field(description="99th percentile (ms), within 1 %.")


class Latency(BaseModel):
    first_response: Percentiles = Field(description="From the first user message to the first answer.")
    agent_message: Percentiles = Field(description="latency_ms of the agent's messages.")


class Tool(BaseModel):
    tool: str
    calls: int
    failures: int
    failure_rate: float | None


class Users(BaseModel):
    active_users: int = Field(description="Distinct users with a session in the period (all channels).")
    new_users: int = Field(description="Users whose first session fell in the period.")
    returning_users: int = Field(description="Active users whose first session was before it.")


class FunnelStep(BaseModel):
    name: str = Field(description="The step's name (funnel_steps seed).")
    sessionCount: int = Field(description="Sessions that reached the step, in time order.")
    dropoffRate: float | None = Field(
        description="Percent of the previous step's sessions that did not reach this one; "
        "null for the first step.")


class Topic(BaseModel):
    topic: str = Field(description="Fallback topic (topic, else intent, lower-cased).")
    count: int = Field(description="fallback_triggered events with the topic.")


class Arm(BaseModel):
    variant: str
    is_control: bool | None
    exposed_sessions: int | None = Field(description="Uncontaminated sessions exposed.")
    units: int | None = Field(description="Of those, sessions with the metric defined.")
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    abs_diff: float | None = Field(description="Mean minus the control's mean.")
    abs_diff_ci_low: float | None
    abs_diff_ci_high: float | None
    rel_lift: float | None = Field(description="abs_diff / the control's mean.")
    rel_lift_ci_low: float | None
    rel_lift_ci_high: float | None
    p_value: float | None = Field(description="Two-sided Welch t-test against the control.")
    always_valid_p_value: float | None = Field(description="mSPRT p-value, safe to read daily.")
    chance_to_win: float | None
    is_significant: bool | None
    minimum_detectable_effect: float | None
    enough_data: bool | None
    additional_sessions_per_arm: float | None = Field(
        description="About how many more sessions each arm needs before enough_data.")
    is_higher_better: bool | None = Field(description="Which way is better (null: neither).")


class AbTest(BaseModel):
    test_name: str
    control_variant: str | None
    srm_p_value: float | None = Field(description="Sample-ratio mismatch chi-square p-value.")
    srm_status: str = Field(description="`mismatch` below the SRM cut-off, else `ok`.")
    contamination_rate: float | None
    metric: str = Field(description="The primary metric, whose arms `variants` lists.")
    variants: list[Arm]
    metrics: dict[str, list[Arm]] = Field(description="Every A/B metric's arms.")


class Filters(BaseModel):
    channel: str | None
    agent_version: str | None


class DashboardResponse(BaseModel):
    period: Period
    metrics: Metrics
    funnel: list[FunnelStep]
    top_fallback_topics: list[Topic]
    ab_tests: list[AbTest]
    latency: Latency
    tools: list[Tool] = Field(description="The tools that failed most in the period.")
    users: Users
    filters: Filters | None = None


class FunnelResponse(BaseModel):
    period: Period
    funnel: list[FunnelStep]


class AbTestsResponse(BaseModel):
    ab_tests: list[AbTest]


class SessionSummary(BaseModel):
    session_id: str
    session_date: date
    channel: str
    agent_version: str | None
    session_started_at: Any
    session_ended_at: Any
    duration_seconds: float
    user_messages: int
    agent_messages: int
    first_response_ms: int | None
    fallback_count: int
    is_escalated: bool
    is_converted: bool
    rating: int | None
    has_feedback: bool
    flows_started: int
    flows_completed: int
    tool_calls: int
    tool_failures: int
    resolution_score: float | None
    efficiency_score: float | None
    sentiment_score: float | None
    goal_completion_score: float | None
    overall_score: float | None


class SessionListResponse(BaseModel):
    sessions: list[SessionSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
    sort: str
    limit: int


class TimelineEvent(BaseModel):
    event_id: str
    event_type: str
    timestamp: Any
    properties: dict[str, Any] = Field(description="The event's properties without message text.")


class Exposure(BaseModel):
    test_name: str
    variant: str
    first_exposed_at: Any
    is_contaminated: bool


class SessionDetailResponse(BaseModel):
    session: dict[str, Any]
    scores: dict[str, float | None]
    exposures: list[Exposure]
    timeline: list[TimelineEvent]


# --- parameters ------------------------------------------------------------------------------

Text = Annotated[str | None, Query(max_length=MAX_TEXT)]


def _period(start: date, end: date, channel: str | None, agent_version: str | None) -> board.Slice:
    try:
        return board.Slice(start, end, channel, agent_version)
    except board.DashboardError as error:
        raise HTTPException(422, str(error)) from None


def _dates_in_reach(*dates: date | None) -> None:
    for value in dates:
        if value is not None and not board.EARLIEST_DATE <= value <= board.LATEST_DATE:
            raise HTTPException(
                422, f"dates must lie within {board.EARLIEST_DATE} .. {board.LATEST_DATE}")


# --- the application -------------------------------------------------------------------------

def create_app(paths: WarehousePaths | None = None) -> FastAPI:
    paths = paths or WarehousePaths.from_env()
    app = FastAPI(
        title="Chat analytics API",
        description="Read-only metrics of the published warehouse snapshot.",
        version="1.0",
    )

    reader = SnapshotReader(paths)
    app.state.reader = reader

    def snapshot(request: Request) -> Iterator[SnapshotView]:
        try:
            path, con = reader.connect()
        except NothingPublishedError as error:
            raise HTTPException(503, str(error)) from None
        except SnapshotUnavailableError as error:
            raise HTTPException(500, str(error)) from None
        try:
            yield SnapshotView(con, lambda compute: reader.answer(
                path, (request.url.path, str(request.query_params)), compute))
        finally:
            con.close()

    Snapshot = Annotated[SnapshotView, Depends(snapshot)]
    router = APIRouter(prefix="/api/analytics")

    @router.get("/dashboard", response_model=DashboardResponse, summary="The dashboard of a period")
    def get_dashboard(
        view: Snapshot,
        start: Annotated[date, Query(description="First session date, YYYY-MM-DD.")],
        end: Annotated[date, Query(description="Last session date, YYYY-MM-DD.")],
        channel: Text = None,
        agent_version: Text = None,
    ) -> Any:
        period = _period(start, end, channel, agent_version)
        try:
            return view.answer(lambda: board.dashboard(view.con, period))
        except board.DashboardError as error:
            raise HTTPException(422, str(error)) from None

    @router.get("/funnel", response_model=FunnelResponse, summary="The funnel of a period")
    def get_funnel(
        view: Snapshot,
        start: date,
        end: date,
        channel: Text = None,
        agent_version: Text = None,
        funnel: Annotated[str, Query(max_length=MAX_TEXT)] = "default",
    ) -> Any:
        period = _period(start, end, channel, agent_version)

        def compute() -> dict[str, Any]:
            board.validate_filters(view.con, period)
            return {"period": {"start": start, "end": end}, "funnel": board.funnel(view.con, period, funnel)}

        try:
            return view.answer(compute)
        except board.DashboardError as error:
            raise HTTPException(422, str(error)) from None

    @router.get("/ab-tests", response_model=AbTestsResponse, summary="Every A/B test")
    def get_ab_tests(view: Snapshot) -> Any:
        return view.answer(lambda: {"ab_tests": board.ab_tests(view.con)})

    @router.get("/sessions", response_model=SessionListResponse, summary="Sessions behind a number")
    def get_sessions(
        view: Snapshot,
        start: date | None = None,
        end: date | None = None,
        channel: Text = None,
        agent_version: Text = None,
        escalated: bool | None = None,
        converted: bool | None = None,
        fallback_topic: Text = None,
        test_name: Text = None,
        variant: Text = None,
        min_score: Annotated[float | None, Query(ge=0, le=100)] = None,
        max_score: Annotated[float | None, Query(ge=0, le=100)] = None,
        sort: Annotated[str, Query(
            pattern="^-?(started_at|duration|overall_score|user_messages)$",
            description="started_at, duration, overall_score or user_messages; - for descending.",
        )] = "-started_at",
        limit: Annotated[int, Query(ge=1, le=drill.MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> Any:
        _dates_in_reach(start, end)
        filters = drill.SessionFilters(
            start, end, channel, agent_version, escalated, converted, fallback_topic, test_name,
            variant, min_score, max_score,
        )

        def compute() -> dict[str, Any]:
            page = drill.list_sessions(view.con, filters, sort, limit, cursor)
            return {"sessions": page.sessions, "next_cursor": page.next_cursor, "sort": page.sort,
                    "limit": page.limit}

        try:
            return view.answer(compute)
        except drill.SessionQueryError as error:
            raise HTTPException(422, str(error)) from None

    @router.get(
        "/sessions/{session_id}", response_model=SessionDetailResponse, summary="One session",
    )
    def get_session(
        view: Snapshot, session_id: Annotated[str, Path(max_length=MAX_TEXT)],
    ) -> Any:
        detail = view.answer(lambda: drill.session_detail(view.con, paths, session_id))
        if detail is None:
            raise HTTPException(404, "no such session")
        return detail

    app.include_router(router)

    @app.get("/", response_class=HTMLResponse, summary="The HTML report")
    def report(
        view: Snapshot,
        start: date | None = None,
        end: date | None = None,
        channel: Text = None,
        agent_version: Text = None,
    ) -> HTMLResponse:
        from .report import default_period, render_html, report_data

        _dates_in_reach(start, end)
        first, last = board.data_range(view.con)
        if last is None:
            raise HTTPException(503, "the published snapshot holds no sessions yet")
        default = default_period(first, end or last)
        start, end = start or default.start, end or default.end
        try:
            page = view.answer(lambda: render_html(
                report_data(view.con, _period(start, end, channel, agent_version))))
        except board.DashboardError as error:
            raise HTTPException(422, str(error)) from None
        return HTMLResponse(page)

    _install_error_handling(app)
    return app


def _install_error_handling(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # Name the parameter and the rule; never echo what was sent (it may be long or hostile).
        detail = [
            {"parameter": ".".join(str(part) for part in problem["loc"][1:]) or problem["loc"][0],
             "location": problem["loc"][0], "message": problem["msg"]}
            for problem in error.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error ({type(error).__name__})"}, status_code=500)

    @app.middleware("http")
    async def bounded_requests(request: Request, call_next: Any) -> Any:
        target = request.scope.get("raw_path", b"") + b"?" + request.scope.get("query_string", b"")
        if len(target) > MAX_URL_BYTES:
            return JSONResponse({"detail": f"URL longer than {MAX_URL_BYTES} bytes"}, status_code=414)
        header_bytes = sum(len(k) + len(v) for k, v in request.scope.get("headers", []))
        if header_bytes > MAX_HEADER_BYTES:
            return JSONResponse(
                {"detail": f"request headers larger than {MAX_HEADER_BYTES} bytes"}, status_code=431)
        return await call_next(request)


def _prepare_queries(reader: SnapshotReader) -> None:
    """Open the published snapshot, load its semantic manifest and compile the dashboard's
    queries before the first request (about 2 s), so that no user waits for it."""
    from .report import default_period

    try:
        _, con = reader.connect()
    except SnapshotUnavailableError:
        return  # the requests will say what is wrong
    try:
        first, last = board.data_range(con)
        if last is not None:
            board.dashboard(con, default_period(first, last))
    except board.DashboardError:
        pass
    finally:
        con.close()


def serve(host: str = "127.0.0.1", port: int = 8000, paths: WarehousePaths | None = None) -> None:
    import contextlib
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        """Stops on SIGTERM or Ctrl-C after the requests in flight, then returns (uvicorn's
        own handling would kill the process with the signal once done)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.handle_exit)
            yield

    paths = paths or WarehousePaths.from_env()
    app = create_app(paths)
    _prepare_queries(app.state.reader)
    print(f"serving {serving_link(paths)} on http://{host}:{port} (docs at /docs)", flush=True)
    Server(uvicorn.Config(
        app,
        host=host,
        port=port,
        server_header=False,
        log_level="warning",
        # room for a URL or headers over our limits, so that they get a JSON 414 / 431
        h11_max_incomplete_event_size=4 * MAX_HEADER_BYTES,
        timeout_graceful_shutdown=10,
    )).run()
    print("stopped", flush=True)
