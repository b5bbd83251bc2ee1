"""The feeds, declared as data: which sources, hydrators, filters, scorers and selector."""

from __future__ import annotations

from fyp.config import Settings
from fyp.filters.blocked_creator_filter import BlockedCreatorFilter
from fyp.filters.moderation_filter import ModerationFilter
from fyp.filters.negative_feedback_filter import NegativeFeedbackFilter
from fyp.filters.preference_filter import PreferenceFilter
from fyp.filters.previously_served_filter import PreviouslyServedFilter
from fyp.hydrators.catalog_hydrator import CatalogHydrator
from fyp.hydrators.features_hydrator import FeaturesHydrator
from fyp.pipeline.catalog_index import CatalogIndex
from fyp.pipeline.clients import FeedClients, ModelSource, NoModels
from fyp.pipeline.runner import Pipeline
from fyp.scorers.action_scorer import ActionScorer
from fyp.scorers.blend_scorer import BlendScorer
from fyp.scorers.feedback_scorer import FeedbackScorer
from fyp.scorers.freshness_scorer import FreshnessScorer
from fyp.selectors.slate_diversity_selector import SlateDiversitySelector
from fyp.selectors.top_k_score_selector import TopKScoreSelector
from fyp.side_effects.served_log_side_effect import ServedLogSideEffect
from fyp.sources.affinity_source import AffinitySource
from fyp.sources.backfill_source import BackfillSource
from fyp.sources.content_source import ContentSource
from fyp.sources.embedding_source import EmbeddingSource
from fyp.sources.following_source import FollowingSource
from fyp.sources.fresh_source import FreshSource
from fyp.sources.item_neighbours_source import ItemNeighboursSource
from fyp.sources.trending_source import TrendingSource
from fyp.storage.cache.memory import MemoryOnlineState
from fyp.storage.data.memory import MemoryDataStore


def build_for_you(settings: Settings, clients: FeedClients) -> Pipeline:
    """The For You feed."""
    catalog, online = clients.catalog, clients.online
    return Pipeline(
        name="for_you",
        sources=[
            EmbeddingSource(),
            ItemNeighboursSource(),
            FollowingSource(catalog),
            TrendingSource(online),
            AffinitySource(catalog),
            ContentSource(),
            FreshSource(catalog, online, settings.serving),
            BackfillSource(catalog),
        ],
        hydrators=[CatalogHydrator(catalog), FeaturesHydrator(online)],
        filters=[
            ModerationFilter(),
            BlockedCreatorFilter(),
            NegativeFeedbackFilter(),
            PreferenceFilter(),
            PreviouslyServedFilter(),
        ],
        scorers=[ActionScorer(), BlendScorer(), FeedbackScorer(), FreshnessScorer()],
        selector=SlateDiversitySelector(fallback=TopKScoreSelector()),
        fallback_selector=TopKScoreSelector(),
        side_effects=[ServedLogSideEffect(clients.store, settings.serving.served_log_flush_ms)],
    )


def fake_clients(settings: Settings, models: ModelSource | None = None) -> FeedClients:
    """In-process clients for tests: memory store and online state, a catalog read each time."""
    store = MemoryDataStore()
    return FeedClients(
        store=store,
        online=MemoryOnlineState(settings.online),
        catalog=CatalogIndex(store, refresh_s=0.0),
        models=models or NoModels(),
    )


def build_for_you_fake(settings: Settings) -> tuple[Pipeline, FeedClients]:
    """The For You feed over fake clients (the test twin of ``build_for_you``)."""
    clients = fake_clients(settings)
    return build_for_you(settings, clients), clients
