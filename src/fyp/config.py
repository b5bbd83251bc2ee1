"""The one typed Settings object, built once at start-up and passed down.

Nothing else in fyp reads the environment: ``Settings()`` reads ``FYP_*`` variables (nested
sections with ``__``, e.g. ``FYP_API__PORT=9000``) and an optional ``.env`` file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ModerationState = Literal["pending", "approved", "limited", "removed"]


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Request bodies over this are refused (413)."
    )
    key_cache_seconds: float = Field(
        default=10.0, ge=0, description="How long a looked-up API key is trusted before re-reading."
    )


class IngestSettings(BaseModel):
    max_batch: int = Field(default=1000, ge=1, le=10_000)
    auto_create_users: bool = Field(
        default=False, description="Create unknown users met in events instead of rejecting them."
    )
    max_future_skew_s: float = Field(
        default=86_400.0,
        ge=0,
        description="Events stamped further ahead of server time are refused.",
    )


class CatalogSettings(BaseModel):
    max_bulk: int = Field(default=1000, ge=1, le=10_000)
    default_moderation: ModerationState = Field(
        default="approved",
        description="State of a new video whose upsert names none; 'pending' holds it for review.",
    )


class BlendWeights(BaseModel):
    """Weights of the predicted actions in a candidate's final value (negative for bad outcomes)."""

    complete: float = 1.0
    like: float = 2.0
    share: float = 4.0
    comment: float = 2.0
    follow: float = 4.0
    skip: float = -1.5
    not_interested: float = -6.0


class SourceQuotas(BaseModel):
    """How many candidates each source may contribute to one request (0 turns it off)."""

    embedding: int = Field(default=300, ge=0)
    item_neighbours: int = Field(default=200, ge=0)
    following: int = Field(default=100, ge=0)
    trending: int = Field(default=150, ge=0)
    affinity: int = Field(default=150, ge=0)
    content: int = Field(default=100, ge=0)
    fresh: int = Field(default=50, ge=0)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in: nested dicts merge key by key, anything else replaces
    (how an experiment arm's overrides apply to ``FeedSettings``)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


class FeedSettings(BaseModel):
    """Every knob of the For You feed. An experiment arm overrides any part of it per request
    (validated by merging the arm's overrides into these values)."""

    default_count: int = Field(default=10, ge=1, le=100)
    max_count: int = Field(default=50, ge=1, le=500)
    blend: BlendWeights = BlendWeights()
    quotas: SourceQuotas = SourceQuotas()
    max_candidates: int = Field(
        default=300,
        ge=1,
        description="Candidates kept for hydration and ranking once the sources are merged: "
        "the best share of every source's list (by rank within it), so each source keeps a "
        "part in proportion to what it found. Each one costs about 33 us of ranking work at a "
        "million videos; 300 against 400 moved no metric of a simulated A/B "
        "(docs/benchmarks.md).",
    )
    creator_spacing: int = Field(
        default=4, ge=0, description="No creator twice within this many consecutive positions."
    )
    diversity: float = Field(
        default=0.3, ge=0, le=1, description="MMR trade-off: 0 is pure score, 1 pure novelty."
    )
    exploration_share: float = Field(
        default=0.1, ge=0, le=1, description="Share of positions given to exploration slots."
    )
    freshness_half_life_h: float = Field(default=48.0, gt=0)
    never_repeat_days: float = Field(default=30.0, ge=0)
    not_interested_days: float = Field(
        default=30.0, ge=0, description="How long not_interested mutes a creator and sound."
    )
    random_scores: bool = Field(
        default=False, description="Rank by random scores (a known-bad arm for testing the lab)."
    )
    disabled_stages: list[str] = Field(
        default_factory=list, description="Stage names switched off (e.g. 'TrendingSource')."
    )
    stage_budget_ms: float = Field(default=50.0, gt=0)


# -- training --
class SignalWeights(BaseModel):
    """How much each event says about a user's taste for a video (like = 1 is the unit).

    A pair's weight is the sum of its events' contributions, capped at ``max_pair_weight``;
    ``skip`` subtracts, ``not_interested`` and ``report`` veto the pair (never a positive),
    ``unlike`` cancels earlier likes. ``impression`` is 0: being shown is not a preference.
    """

    impression: float = 0.0
    play: float = Field(
        default=1.0, description="Times the watch completion (watch_ms / duration_ms, capped)."
    )
    play_unknown_duration: float = Field(
        default=0.5, description="A play whose video duration is unknown (no completion)."
    )
    complete_bonus: float = Field(
        default=0.5, description="Added when completion reaches complete_threshold."
    )
    complete_threshold: float = Field(default=0.9, gt=0)
    completion_cap: float = Field(
        default=2.0, ge=1.0, description="Replays may count past 1.0, up to this."
    )
    like: float = 1.0
    share: float = 2.0
    comment: float = 1.5
    follow: float = 1.5
    profile_visit: float = 0.3
    skip: float = Field(default=-0.5, le=0)
    max_pair_weight: float = Field(default=5.0, gt=0)
    min_positive: float = Field(
        default=0.5,
        gt=0,
        description="A pair counts as a positive from this weight up (a play under half watched "
        "is not one).",
    )


class EmbeddingSettings(BaseModel):
    """Weighted ALS over users x videos plus content pseudo-users (see fyp.training.embeddings).

    Defaults were tuned on the TikTok ``valid`` split only (docs/benchmarks.md).
    """

    factors: int = Field(default=128, ge=2, le=1024)
    regularization: float = Field(default=1000.0, ge=0)
    alpha: float = Field(default=500.0, gt=0, description="Confidence per unit of weight.")
    iterations: int = Field(default=20, ge=1)
    content_neighbours: int = Field(
        default=2, ge=0, description="Neighbours per content pseudo-user row (0 turns it off)."
    )
    content_weight: float = Field(
        default=1.0, gt=0, description="Interaction weight of each content pseudo-user entry."
    )
    seed: int = 42


class TrainingSettings(BaseModel):
    """The trainer: signals from the event log, model hyper-parameters, artefacts, schedule."""

    models_dir: Path | None = Field(
        default=None, description="Model versions live here; None means var_dir/models."
    )
    reload_seconds: float = Field(
        default=5.0, ge=0, description="How often a server re-reads the ACTIVE model pointer."
    )
    schedule_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Retrain inside the server this often (0: off; run `fyp train` instead).",
    )
    keep_versions: int = Field(default=5, ge=1, description="Older versions are deleted.")
    page_size: int = Field(default=10_000, ge=100, le=100_000)
    weights: SignalWeights = SignalWeights()
    embedding: EmbeddingSettings = EmbeddingSettings()
    item_neighbours: int = Field(default=50, ge=1, le=1000)
    item_history_cap: int = Field(
        default=1000,
        ge=1,
        description="Co-engagement uses at most this many of a user's latest positives "
        "(the cost grows with the square of a user's history).",
    )
    content_neighbours: int = Field(default=50, ge=1, le=1000)
    sequence_window: int = Field(
        default=3, ge=1, description="Next-item pairs up to this many steps apart count."
    )
    sequence_neighbours: int = Field(default=50, ge=1, le=1000)
    index_kind: Literal["auto", "flat", "hnsw", "hnsw_sq8", "ivf"] = Field(
        default="auto",
        description="ANN index over video vectors; auto: exact below exact_index_below, else "
        "HNSW over 8-bit codes (hnsw_sq8: the recall of hnsw, faster, a smaller file).",
    )
    exact_index_below: int = Field(
        default=100_000, ge=0, description="Catalogs smaller than this get an exact index."
    )
    hnsw_m: int = Field(default=32, ge=4, le=128)
    hnsw_ef_search: int = Field(default=512, ge=8)
    ivf_nprobe: int = Field(default=64, ge=1, description="IVF lists scanned per query.")
    ranker_min_positives: int = Field(
        default=20, ge=1, description="An action with fewer positive outcomes gets no model."
    )
    ranker_rounds: int = Field(
        default=100, ge=1, description="Most trees per action (early stopping may use fewer)."
    )
    ranker_leaves: int = Field(default=31, ge=2)
    ranker_learning_rate: float = Field(default=0.1, gt=0, le=1)
    native_ranker: bool = Field(
        default=True,
        description="Compile the ranker's trees to native code with each version (treelite and "
        "tl2cgen, needs gcc or clang): the same predictions in about a third of the time. "
        "Without a compiler the LightGBM models serve.",
    )
    outcome_window_s: float = Field(
        default=3600.0, gt=0, description="Events this long after serving are its outcomes."
    )
    threads: int = Field(default=1, ge=1, description="BLAS/OpenMP threads while training.")
    evaluate: bool = Field(
        default=True, description="Record a temporal leave-one-out in each version's manifest."
    )
    eval_max_users: int = Field(
        default=2000, ge=1, description="Users sampled for that leave-one-out (it costs a fit)."
    )


# -- online state and serving (feed) --
class OnlineSettings(BaseModel):
    """Where the online state lives (seen sets, recent interests, negatives, counters, trending)
    and how fast its signals decay."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field(default="fyp:", description="Prefix of every Redis key.")
    redis_timeout_s: float = Field(
        default=0.5, gt=0, description="A Redis call slower than this counts as a failure."
    )
    redis_retry_s: float = Field(
        default=1.0,
        ge=0,
        description="After a Redis failure, calls fail at once for this long (the feed degrades).",
    )
    user_ttl_days: float = Field(
        default=30.0, gt=0, description="A user's state expires this long after their last event."
    )
    max_users: int = Field(
        default=200_000,
        ge=1,
        description="Memory backend: least recently used users beyond this are dropped.",
    )
    recent_size: int = Field(default=50, ge=1, le=1000, description="Recent engagements kept.")
    max_served: int = Field(
        default=20_000, ge=100, description="Served ids kept per user (oldest dropped first)."
    )
    affinity_half_life_h: float = Field(default=72.0, gt=0)
    trending_half_life_h: float = Field(default=6.0, gt=0)
    warm_events: int = Field(
        default=200_000,
        ge=0,
        description="Memory backend: video counters and trending are rebuilt from this many of "
        "the newest logged events at start-up.",
    )
    warm_user_events: int = Field(
        default=500,
        ge=0,
        description="A cold user's state is rebuilt from this many of their newest events; "
        "impressions, which move no per-user state, are not read and not counted.",
    )


class ServingSettings(BaseModel):
    """Feed serving knobs that are not experiment levers (those live in FeedSettings)."""

    catalog_refresh_s: float = Field(
        default=2.0, ge=0, description="The in-process catalog index re-reads the store this often."
    )
    fresh_window_h: float = Field(
        default=72.0, gt=0, description="Videos this young are in the fresh pool."
    )
    fresh_max_impressions: int = Field(
        default=200, ge=1, description="Exploratory impressions a fresh video gets at most."
    )
    region_strict: bool = Field(
        default=False, description="Only serve videos from the user's region (when both known)."
    )
    language_strict: bool = Field(
        default=False, description="Only serve videos in the user's language (when both known)."
    )
    adult_age: int = Field(default=18, ge=1)
    served_log_flush_ms: float = Field(
        default=200.0,
        ge=0,
        description="Served-log rows are written in batches this often (0: with each request).",
    )


# -- experiments --
class ExperimentSettings(BaseModel):
    """The lab: assignment caching and the definitions behind experiment results."""

    cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a server trusts its list of running experiments."
    )
    min_users_per_arm: int = Field(
        default=100, ge=2, description="Below this, a comparison says 'not enough data yet'."
    )
    srm_threshold: float = Field(
        default=0.001, gt=0, lt=1, description="SRM chi-square p-value that raises the alarm."
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="1 - confidence level.")
    session_gap_minutes: float = Field(
        default=30.0, gt=0, description="A longer pause between events starts a new session."
    )
    pre_period_days: float = Field(
        default=7.0, ge=0, description="Days before the start whose activity feeds CUPED."
    )
    new_days: float = Field(
        default=7.0, ge=0, description="Videos and creators younger than this count as new."
    )
    complete_threshold: float = Field(
        default=0.9, gt=0, description="A play reaching this share of the duration completes."
    )


# -- scale --
class ServerSettings(BaseModel):
    """Running many workers: processes, timeouts, back-pressure, logs and metrics.

    ``fyp serve --workers N`` starts N processes that each build their app from the same
    ``FYP_*`` environment, so every value here reaches every worker.
    """

    workers: int = Field(default=1, ge=1, description="Worker processes of `fyp serve`.")
    graceful_shutdown_s: float = Field(
        default=30.0, ge=0, description="On SIGTERM, in-flight requests get this long to finish."
    )
    worker_healthcheck_s: int = Field(
        default=30,
        ge=1,
        description="A worker that does not answer uvicorn's supervisor for this long (start-up "
        "included: loading models takes a while) is killed and replaced.",
    )
    startup_store_wait_s: float = Field(
        default=20.0,
        ge=0,
        description="How long a starting worker keeps retrying a store it cannot reach before "
        "it gives up (0: at once): a short outage, such as a database restart or failover, "
        "delays the start instead of failing it. With several workers, uvicorn's supervisor "
        "stops the whole server when one worker fails to start (`fyp serve` exits 1).",
    )
    ingest_max_inflight: int = Field(
        default=16,
        ge=1,
        description="Event batches a worker stores at once; more are refused with 429.",
    )
    store_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="An event batch not committed (or an API-key lookup not answered) by then "
        "is answered 503; nothing unanswered is acknowledged.",
    )
    retry_after_s: int = Field(default=1, ge=1, description="Retry-After on 429 and 503 answers.")
    gc_threshold: int = Field(
        default=20_000,
        ge=1,
        description="New container objects (allocated minus freed) between collections of the "
        "cyclic GC's youngest generation in a serving process (Python's default is 700). A "
        "feed request holds a few thousand objects at once, all freed by reference counting "
        "when it ends; at 700 the GC scanned them several times a request for nothing "
        "(docs/benchmarks.md).",
    )
    db_pool_size: int = Field(
        default=8,
        ge=1,
        description="Database connections per worker: PostgreSQL's pool (plus as many overflow); "
        "on SQLite the readers (and the idle ones kept for the feed's per-request reads).",
    )
    db_pool_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest wait for a pooled connection before 503."
    )
    db_connect_timeout_s: float = Field(default=3.0, gt=0)
    db_statement_timeout_s: float = Field(
        default=30.0, ge=0, description="PostgreSQL statement_timeout (0: none)."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per log line (for log shippers)."
    )
    log_level: str = "INFO"
    metrics: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    metrics_dir: Path | None = Field(
        default=None,
        description="prometheus-client multiprocess directory; `fyp serve --workers N` (N > 1) "
        "sets it to var_dir/metrics so /metrics sums every worker.",
    )
    trainer_lease_s: float = Field(
        default=120.0,
        gt=0,
        description="The trainer lease lasts this long unless renewed (renewed every third).",
    )
    compiled: bool = Field(
        default=True,
        description="`fyp serve` runs the feed's hot modules compiled by mypyc (11-19% less "
        "CPU a feed, docs/benchmarks.md) when `fyp compile` has built them for exactly the "
        "sources installed; without such a build it runs the plain modules.",
    )
    malloc_huge_pages: bool = Field(
        default=True,
        description="`fyp serve` runs with glibc's malloc asking for transparent huge pages "
        "(GLIBC_TUNABLES=glibc.malloc.hugetlb=1, set before the interpreter starts): the "
        "feed reads its million-entry id tables at random, and with 4 KiB pages most of those "
        "reads also miss the TLB (docs/benchmarks.md). Needs glibc 2.35 or later and THP in "
        "`madvise` or `always` mode; elsewhere the variable is ignored.",
    )


# -- web --
class WebSettings(BaseModel):
    """The web pages: the try-it swipe feed at ``/`` and the dashboard at ``/dashboard``.

    The dashboard accepts an admin API key, or ``admin_user`` + ``admin_password`` when both
    are set; either opens a signed cookie session.
    """

    enabled: bool = Field(default=True, description="Serve the pages at / and /dashboard.")
    public_feed: bool = Field(
        default=True,
        description="Let anyone open / and create users there (a demo; turn off in production).",
    )
    admin_user: str = ""
    admin_password: SecretStr = SecretStr("")
    session_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Signs dashboard cookies; empty: one is made and kept in var_dir/web.secret.",
    )
    session_hours: float = Field(default=12.0, gt=0)
    secure_cookies: bool = Field(default=False, description="Send cookies over HTTPS only.")
    analytics_refresh_s: float = Field(
        default=2.0, ge=0, description="The dashboard re-reads new events at most this often."
    )
    analytics_max_events: int = Field(
        default=2_000_000,
        ge=1000,
        description="At start-up the dashboard aggregates at most this many of the newest events.",
    )


# -- simulator --
class SimulatorSettings(BaseModel):
    """The live simulated audience ``fyp serve --simulate N`` runs beside the server: users with
    hidden tastes over the server's own catalog request feeds and send events through the HTTP
    API in real time, so the dashboard and the feed have activity to show (``make run``)."""

    users: int = Field(
        default=0, ge=0, description="Simulated users (0: off); `fyp serve --simulate N` sets it."
    )
    keys_file: Path | None = Field(
        default=None,
        description="FYP_DEMO_APP_KEY and FYP_DEMO_ADMIN_KEY as `fyp demo` writes them; "
        "None means var_dir/demo-keys.env.",
    )
    day_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Real seconds per simulated day: the sessions of the users who come back "
        "that day are spread over it, and one summary line is logged per day.",
    )
    speedup: float = Field(
        default=20.0,
        ge=1,
        description="Users watch this many times faster than real time (event times alike).",
    )
    max_sessions_per_s: float = Field(
        default=1.0,
        gt=0,
        description="Sessions start at most this often (a larger audience stretches its day).",
    )
    concurrency: int = Field(default=32, ge=1, description="Sessions in flight at most.")
    page_size: int = Field(default=10, ge=1, le=100, description="Feed items per request.")
    seed: int = 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FYP_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    var_dir: Path = Path("var")
    data_dir: Path = Field(
        default=Path("../shared/data"),
        description="Where the real data sets (tiktok/, kuairand/) live.",
    )
    database_url: str = Field(
        default="",
        description="sqlite:///path, postgresql+psycopg://..., or memory://; "
        "empty means sqlite under var_dir.",
    )
    auto_migrate: bool = Field(
        default=True, description="Run pending schema migrations when the server starts."
    )
    redis_url: str = Field(
        default="",
        description="Shorthand for the shared online state: redis://... selects the Redis "
        "backend at that URL (the same as online.backend=redis and online.redis_url).",
    )
    api: ApiSettings = ApiSettings()
    ingest: IngestSettings = IngestSettings()
    catalog: CatalogSettings = CatalogSettings()
    feed: FeedSettings = FeedSettings()
    training: TrainingSettings = TrainingSettings()  # -- training --
    online: OnlineSettings = OnlineSettings()  # -- online state and serving --
    serving: ServingSettings = ServingSettings()
    experiments: ExperimentSettings = ExperimentSettings()  # -- experiments --
    server: ServerSettings = ServerSettings()  # -- scale --
    web: WebSettings = WebSettings()  # -- web --
    simulator: SimulatorSettings = SimulatorSettings()  # -- simulator --

    @model_validator(mode="after")
    def _redis_shorthand(self) -> Settings:
        if self.redis_url:
            self.online = self.online.model_copy(
                update={"backend": "redis", "redis_url": self.redis_url}
            )
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'fyp.db'}"
