"""The request part shared by ``/training``, ``/evaluation`` and ``/tuning``: the data (a data
set or a path with a mapping), the protocol (holdout or prequential, the split, the label delay),
the feature set, the FPR target and a row limit. See :mod:`models.training`."""

from __future__ import annotations

from pydantic import Field

from api.sources import SourceIn
from models.training import ProtocolOptions


class LearningIn(SourceIn):
    """What to learn from, and how to split and stream it."""

    protocol: ProtocolOptions = Field(default_factory=ProtocolOptions,
                                      description="holdout or prequential; split and label delay")
    feature_set: str | None = Field(default=None, description="default: FRAUDSTREAM_FEATURE_SET")
    max_fpr: float | None = Field(default=None, gt=0, lt=1,
                                  description="the operating threshold's FPR target; default: "
                                              "FRAUDSTREAM_MAX_FPR")
    nrows: int | None = Field(default=None, ge=1, description="only the first N rows")
