"""Wire format: the TensorPayload codec and the pydantic models of widget state and messages.

No torch import here: these modules run in the kernel of any widget and in tooling.
"""

from interp_widget.schema.attention import (
    SCORE_KINDS,
    AttentionState,
    CommandEnvelope,
    ErrorInfo,
    ErrorReply,
    GetPatternRequest,
    HeadScore,
    PatternReply,
    PatternWindow,
    PromptData,
    StaticAttention,
)
from interp_widget.schema.tensor import TensorPayload, decode, encode, wire_dtype
from interp_widget.schema.wire import pack, unpack

__all__ = [
    "SCORE_KINDS",
    "AttentionState",
    "CommandEnvelope",
    "ErrorInfo",
    "ErrorReply",
    "GetPatternRequest",
    "HeadScore",
    "PatternReply",
    "PatternWindow",
    "PromptData",
    "StaticAttention",
    "TensorPayload",
    "decode",
    "encode",
    "pack",
    "unpack",
    "wire_dtype",
]
