"""Every span attribute name otel-tokens reads or writes, defined once (SPEC §2)."""

from __future__ import annotations

# --- OpenTelemetry GenAI semantic conventions (v1.41, gen_ai_latest_experimental) ---------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"  # read as creation
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"  # metric attribute: "input" / "output"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

# Cost: semconv-genai proposal #443.
GEN_AI_USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE = "gen_ai.usage.cost.source"
COST_SOURCE_PROVIDER = "provider"
COST_SOURCE_LOCAL = "local"

# General semantic conventions.
ENDUSER_ID = "enduser.id"
SESSION_ID = "session.id"
SERVICE_NAME = "service.name"
TELEMETRY_SDK_NAME = "telemetry.sdk.name"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"

# --- Project namespace (no standard exists) ---------------------------------------------------
OTEL_TOKENS_NODE = "otel_tokens.node"
OTEL_TOKENS_CORRELATION_ID = "otel_tokens.correlation_id"
OTEL_TOKENS_TENANT = "otel_tokens.tenant"
OTEL_TOKENS_JOB_TYPE = "otel_tokens.job_type"
OTEL_TOKENS_USAGE_ESTIMATED = "otel_tokens.usage.estimated"
OTEL_TOKENS_PRICING_REF = "otel_tokens.pricing.ref"

# --- Foreign conventions the collector normalises (SPEC §2); raw attributes are kept ----------
# Old GenAI semconv.
OLD_GEN_AI_SYSTEM = "gen_ai.system"
OLD_GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"
OLD_GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"
# OpenLLMetry (traceloop).
OPENLLMETRY_TOTAL_TOKENS = "gen_ai.usage.total_tokens"
OPENLLMETRY_REASONING_TOKENS = "gen_ai.usage.reasoning_tokens"
OPENLLMETRY_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read_input_tokens"
OPENLLMETRY_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation_input_tokens"
TRACELOOP_ASSOCIATION_PREFIX = "traceloop.association.properties."
TRACELOOP_ENTITY_NAME = "traceloop.entity.name"
OPENLLMETRY_REQUEST_TYPE = "llm.request.type"  # chat / completion / embedding
# OpenInference (Arize / Phoenix).
OPENINFERENCE_PROMPT_TOKENS = "llm.token_count.prompt"
OPENINFERENCE_COMPLETION_TOKENS = "llm.token_count.completion"
OPENINFERENCE_TOTAL_TOKENS = "llm.token_count.total"
OPENINFERENCE_CACHE_READ = "llm.token_count.prompt_details.cache_read"
OPENINFERENCE_CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
OPENINFERENCE_REASONING = "llm.token_count.completion_details.reasoning"
OPENINFERENCE_MODEL_NAME = "llm.model_name"
OPENINFERENCE_PROVIDER = "llm.provider"
OPENINFERENCE_SYSTEM = "llm.system"
OPENINFERENCE_USER_ID = "user.id"
OPENINFERENCE_SESSION_ID = "session.id"
OPENINFERENCE_GRAPH_NODE_NAME = "graph.node.name"
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"  # LLM / EMBEDDING / CHAIN / TOOL / ...
OPENINFERENCE_COST_TOTAL = "llm.cost.total"
# OpenLIT.
OPENLIT_COST = "gen_ai.usage.cost"
OPENLIT_USER_ID = "gen_ai.user.id"
OPENLIT_SESSION_ID = "gen_ai.session.id"

# Where the node of a span may be found, in order (collector's default node resolution list).
DEFAULT_NODE_ATTRIBUTES = (
    OTEL_TOKENS_NODE,
    OPENINFERENCE_GRAPH_NODE_NAME,
    TRACELOOP_ENTITY_NAME,
    GEN_AI_AGENT_NAME,
)

# Baggage keys used when propagation is switched on (SPEC §3).
BAGGAGE_KEYS = (
    ENDUSER_ID,
    SESSION_ID,
    GEN_AI_CONVERSATION_ID,
    OTEL_TOKENS_NODE,
    OTEL_TOKENS_CORRELATION_ID,
    OTEL_TOKENS_TENANT,
    OTEL_TOKENS_JOB_TYPE,
)
